"""Manage references that name an object the worker already manages are
refused before the backend is touched; the managed object stays as it was."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.unit.manager.conftest import new_volume, record, request, sent, until
from volworker.manager.core import Manager
from volworker.manager.runtime import Runtime
from volworker_drivers.fake.driver import FakeDriver


async def _settled(runtime: Runtime, kind: str, object_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def final() -> bool:
        stored = await record(runtime, kind, object_id)
        if stored is None or stored["status"] == "creating":
            return False
        found.update(stored)
        return True

    await until(final)
    return found


async def _available_volume(runtime: Runtime, manager: Manager) -> dict[str, Any]:
    volume = new_volume()
    manager.submit(request("create_volume", volume=volume))
    assert (await _settled(runtime, "volume", volume["id"]))["status"] == "available"
    return volume


@pytest.mark.parametrize("key", ["source-name", "source-id"])
async def test_managing_a_managed_volume_is_refused(
    runtime: Runtime, manager: Manager, driver: FakeDriver, key: str
) -> None:
    victim = await _available_volume(runtime, manager)
    thief = new_volume()
    # Upper case: the same uuid however it is spelled.
    ref = {key: f"volume-{victim['id'].upper()}"}
    manager.submit(request("manage_existing", volume=thief, ref=ref))
    stored = await _settled(runtime, "volume", thief["id"])
    assert stored["status"] == "error"
    assert "already managed as volume" in stored["error"]
    assert "manage_existing" not in driver.calls
    assert "manage_existing_get_size" not in driver.calls
    assert (await record(runtime, "volume", victim["id"]) or {})["status"] == (
        "available"
    )
    assert sent(runtime).events(thief["id"])[-1] == "volume.manage_existing.error"


async def test_managing_a_managed_snapshot_is_refused(
    runtime: Runtime, manager: Manager, driver: FakeDriver
) -> None:
    volume = await _available_volume(runtime, manager)
    snapshot = {"id": str(uuid.uuid4()), "volume_id": volume["id"]}
    manager.submit(request("create_snapshot", snapshot=snapshot))
    await _settled(runtime, "snapshot", snapshot["id"])
    thief = {"id": str(uuid.uuid4()), "volume_id": volume["id"]}
    ref = {"source-name": f"snapshot-{snapshot['id']}"}
    manager.submit(request("manage_existing_snapshot", snapshot=thief, ref=ref))
    stored = await _settled(runtime, "snapshot", thief["id"])
    assert stored["status"] == "error"
    assert "already managed as snapshot" in stored["error"]
    assert "manage_existing_snapshot" not in driver.calls


async def test_a_volume_name_of_no_record_can_be_managed(
    runtime: Runtime, manager: Manager, driver: FakeDriver
) -> None:
    orphan = f"volume-{uuid.uuid4()}"
    driver.plant(orphan, 1)
    volume = new_volume()
    manager.submit(
        request("manage_existing", volume=volume, ref={"source-name": orphan})
    )
    assert (await _settled(runtime, "volume", volume["id"]))["status"] == "available"
