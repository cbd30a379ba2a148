"""Per-volume order under load: many volumes, each with a chain of
operations sent back to back; every step must find the previous one done."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import Any

import pytest

from tests.functional.conftest import new_snapshot, new_volume
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker

VOLUMES = 50
STEPS = (
    "volume.create.end",
    "volume.extend.end",
    "snapshot.create.end",
    "snapshot.delete.end",
    "volume.delete.end",
)


def _backend(kind: str, tmp_path: pathlib.Path) -> dict[str, Any]:
    if kind == "fake":
        # Latency makes operations on different volumes overlap.
        return {"volume_driver": "fake", "fake_latency": 0.005}
    return {"volume_driver": "file", "file_pools": f"p:{tmp_path / 'pool'}"}


@pytest.mark.parametrize("kind", ["fake", "file"])
def test_chains_sent_back_to_back_all_succeed(
    kind: str,
    tmp_path: pathlib.Path,
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[[Worker], Notifications],
) -> None:
    worker = make_worker(
        {"b1": _backend(kind, tmp_path)}, defaults={"max_concurrent_operations": 8}
    )
    worker.start().wait_ready()
    api, events = client(worker), notifications(worker)
    server = worker.server("b1")
    for _ in range(VOLUMES):
        volume = new_volume(worker, "b1")
        snapshot = new_snapshot(volume)
        api.create_volume(volume)
        api.extend_volume(volume, 2)
        api.create_snapshot(server, snapshot)
        api.delete_snapshot(server, snapshot)
        api.delete_volume(volume)

    def finished(_: list[dict[str, Any]]) -> bool:
        return events.count("volume.delete.end") + events.count(".error") >= VOLUMES

    events.wait_for(finished, timeout=120)
    errors = [
        m["payload"].get("error")
        for m in events.events()
        if ".error" in m["event_type"]
    ]
    assert errors == []
    for step in STEPS:
        assert len(events.events(step)) == VOLUMES, step
    assert api.list_volumes(server) == []
    if kind == "file":
        assert [p for p in os.listdir(tmp_path / "pool") if not p.startswith(".")] == []
    assert worker.stop() == 0
