"""A volume's life over the wire, against both drivers."""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.functional.conftest import new_snapshot, new_volume
from volworker import exception
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker


def _backends(kind: str, tmp_path: pathlib.Path) -> dict[str, dict[str, Any]]:
    if kind == "fake":
        return {"b1": {"volume_driver": "fake", "fake_pools": "p1,p2"}}
    return {
        "b1": {
            "volume_driver": "file",
            "file_pools": f"p1:{tmp_path / 'p1'},p2:{tmp_path / 'p2'}",
        }
    }


def wait_status(
    api: VolumeAPI, server: str, volume_id: str, status: str, timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record = api.get_volume(server, volume_id)
        if record["status"] == status or time.monotonic() > deadline:
            assert record["status"] == status, record
            return record
        time.sleep(0.05)


@pytest.mark.parametrize("kind", ["fake", "file"])
def test_volume_life(
    kind: str,
    tmp_path: pathlib.Path,
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[[Worker], Notifications],
) -> None:
    worker = make_worker(_backends(kind, tmp_path)).start().wait_ready()
    api, events = client(worker), notifications(worker)
    server = worker.server("b1")

    volume = new_volume(worker, "b1", size=1, name="data")
    api.create_volume(volume)
    record = wait_status(api, server, volume["id"], "available")
    assert record["host"] == f"{server}#p1"  # the default pool is made explicit
    assert record["name"] == "data"
    events.wait_event("volume.create.end", volume["id"])
    start = events.events("volume.create.start")[0]
    assert start["payload"]["status"] == "creating"
    assert start["_context_request_id"].startswith("req-")  # tied to its request

    api.extend_volume(volume, 2)
    snapshot = new_snapshot(volume)
    api.create_snapshot(server, snapshot)
    clone = new_volume(
        worker, "b1", size=2, source_volid=volume["id"], host=f"{server}#p2"
    )
    api.create_volume(clone)
    from_snap = new_volume(worker, "b1", size=3, snapshot_id=snapshot["id"])
    api.create_volume(from_snap)
    events.wait_event("volume.extend.end", volume["id"])
    assert wait_status(api, server, volume["id"], "available")["size"] == 2
    assert wait_status(api, server, clone["id"], "available")["host"] == f"{server}#p2"
    assert wait_status(api, server, from_snap["id"], "available")["size"] == 3
    assert api.get_snapshot(server, snapshot["id"])["status"] == "available"
    events.wait_event("snapshot.create.end", snapshot["id"])

    info = api.initialize_connection(volume, {"host": "client-1"})
    assert info["driver_volume_type"] == ("nbd" if kind == "file" else "fake")
    assert api.initialize_connection(volume, {"host": "client-1"}) == info
    assert api.get_volume(server, volume["id"])["status"] == "in-use"
    api.terminate_connection(volume, {"host": "client-1"})
    assert api.get_volume(server, volume["id"])["status"] == "available"

    api.delete_snapshot(server, snapshot)
    for vol in (from_snap, clone, volume):
        api.delete_volume(vol)
    for vol in (from_snap, clone, volume):
        events.wait_event("volume.delete.end", vol["id"])
    with pytest.raises(exception.VolumeNotFound):
        api.get_volume(server, volume["id"])
    with pytest.raises(exception.SnapshotNotFound):
        api.get_snapshot(server, snapshot["id"])
    assert api.list_volumes(server) == []
    assert events.count(".error") == 0
    assert worker.stop() == 0


def test_list_volumes_pages(
    tmp_path: pathlib.Path,
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
) -> None:
    worker = make_worker(_backends("fake", tmp_path)).start().wait_ready()
    api = client(worker)
    server = worker.server("b1")
    ids = []
    for _ in range(5):
        volume = new_volume(worker, "b1")
        api.create_volume(volume)
        ids.append(volume["id"])
    wait_status(api, server, ids[-1], "available")
    first = api.list_volumes(server, limit=2)
    rest = api.list_volumes(server, marker=first[-1]["id"])
    assert [v["id"] for v in first + rest] == ids
