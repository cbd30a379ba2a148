"""Operation.fail: what status a failed operation leaves its object in.

A backend failure gives the action's error status (a failed create is
``error``); a refusal (bad input, wrong status, not supported) leaves the
object as it was; a failure never leaves an object in a transitional status,
also when a redo after a crash started from one; an action without an error
status (attach, copy to image) keeps the status it found.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.unit.manager.conftest import (
    journal,
    journaled,
    new_volume,
    operation,
    record,
    request,
    sent,
    stored_volume,
)
from volworker import exception
from volworker.manager.runtime import Runtime

BACKEND = exception.VolumeBackendAPIException(data="the array said no")
REFUSED = exception.InvalidVolume(reason="not now")


CASES = [
    # action, status found, status begin() sets (None: begin not reached)
    # or "-" (begin(None)), the error, the status left
    ("create_volume", None, "creating", BACKEND, "error"),
    ("create_volume", None, "creating", REFUSED, "error"),
    ("extend_volume", "available", "extending", BACKEND, "error_extending"),
    ("extend_volume", "available", None, REFUSED, "available"),
    ("extend_volume", "extending", None, REFUSED, "error_extending"),
    ("delete_volume", "available", "deleting", BACKEND, "error_deleting"),
    ("delete_volume", "in-use", None, REFUSED, "in-use"),
    ("revert_to_snapshot", "available", "reverting", BACKEND, "error"),
    ("copy_volume_to_image", "in-use", "-", BACKEND, "in-use"),
    ("initialize_connection", "available", "-", BACKEND, "available"),
]


def _args(action: str, volume: dict[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "extend_volume": {"new_size": 2},
        "delete_volume": {"unmanage_only": False},
        "revert_to_snapshot": {"snapshot": {"id": "s", "volume_id": volume["id"]}},
        "copy_volume_to_image": {"image_meta": {"id": "i"}},
        "initialize_connection": {"connector": {"host": "c"}},
    }.get(action, {})
    return {"volume": volume, **extra}


@pytest.mark.parametrize(("action", "found", "begun", "error", "left"), CASES)
async def test_a_failure_leaves_the_object_honest(
    runtime: Runtime,
    action: str,
    found: str | None,
    begun: str | None,
    error: exception.VolworkerError,
    left: str,
) -> None:
    volume = new_volume() if found is None else await stored_volume(runtime, found)
    req = request(action, **_args(action, volume))
    op = operation(runtime, req, await journaled(runtime, req))
    if begun is not None:
        await op.begin(None if begun == "-" else begun)
    await op.fail(error)
    stored = await record(runtime, "volume", volume["id"])
    assert stored is not None
    assert stored["status"] == left
    if left.startswith("error"):
        assert stored["error"] == str(error)
    else:
        assert "error" not in stored
    (entry,) = await journal(runtime)
    assert (entry["state"], entry["error"]) == ("failed", str(error))
    event, payload = sent(runtime).sent[-1]
    assert event == f"volume.{op.command.event}.error"
    assert payload["error"] == str(error)


async def test_a_failed_snapshot_create_is_in_error(runtime: Runtime) -> None:
    volume = await stored_volume(runtime, "available")
    snapshot = {"id": new_volume()["id"], "volume_id": volume["id"]}
    req = request("create_snapshot", snapshot=snapshot)
    op = operation(runtime, req, await journaled(runtime, req))
    await op.begin("creating")
    await op.fail(BACKEND)
    stored = await record(runtime, "snapshot", snapshot["id"])
    assert stored is not None
    assert (stored["status"], stored["error"]) == ("error", str(BACKEND))
    assert (await record(runtime, "volume", volume["id"]) or {})["status"] == (
        "available"
    )
    assert sent(runtime).events(snapshot["id"])[-1] == "snapshot.create.error"


async def test_a_record_and_its_notification_say_what_a_caller_is_told(
    runtime: Runtime,
) -> None:
    """An error that is not the contract's arrives as the contract's
    backend error, and neither the record nor the notification quotes where
    volworker is installed (the log keeps the whole error)."""
    volume = await stored_volume(runtime, "available")
    req = request("extend_volume", volume=volume, new_size=2)
    op = operation(runtime, req, await journaled(runtime, req))
    await op.begin("extending")
    inside = f"{os.path.dirname(exception.__file__)}/state/store.py"
    await op.fail(PermissionError(13, "Permission denied", inside))
    stored = await record(runtime, "volume", volume["id"])
    assert stored is not None
    _, payload = sent(runtime).sent[-1]
    for said in (stored["error"], payload["error"]):
        assert "PermissionError" in said and "Permission denied" in said
        assert inside not in said and "<install>" in said
    assert stored["status"] == "error_extending"
