"""Groups over the wire (contract 1.1): a group of three volumes with data
written through NBD, a group snapshot, a group made from it holding the same
bytes, a group copied from a group, and the refusals a caller must see."""

from __future__ import annotations

import json
import pathlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.contract import nbdclient
from tests.functional.conftest import new_volume
from tests.functional.test_lifecycle import wait_status
from volworker import exception
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker

MiB = 1024**2
CONSISTENT = {
    "name": "db",
    "group_specs": {"consistent_group_snapshot_enabled": "<is> True"},
}


def _wait(get: Callable[[], dict[str, Any]], status: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while (record := get())["status"] != status:
        assert time.monotonic() < deadline, record
        time.sleep(0.05)
    return record


def _group(worker: Worker, **fields: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "host": worker.server("b1"), **fields}


def _gone(get: Callable[[], Any], error: type[Exception]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            get()
        except error:
            return
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _through_nbd(
    api: VolumeAPI, volume: dict[str, Any], use: Callable[[dict[str, Any]], Any]
) -> Any:
    """Attach ``volume``, ``use`` the connection, detach; what ``use`` said."""
    info = api.initialize_connection(volume, {"host": "client"})
    try:
        return use(info)
    finally:
        api.terminate_connection(volume, {"host": "client"})


def test_group_snapshot_and_groups_made_from_sources_keep_the_bytes(
    tmp_path: pathlib.Path,
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[[Worker], Notifications],
) -> None:
    backend = {"volume_driver": "file", "file_pools": f"p:{tmp_path / 'pool'}"}
    worker = make_worker({"b1": backend}).start().wait_ready()
    api, events, server = client(worker), notifications(worker), worker.server("b1")
    caps = api.get_capabilities(server)
    assert caps["pools"][0]["consistent_group_snapshot_enabled"] is True

    group = _group(worker, name="db", group_type=CONSISTENT)
    api.create_group(group)
    _wait(lambda: api.get_group(server, group["id"]), "available")
    members = [new_volume(worker, "b1", group_id=group["id"]) for _ in range(3)]
    for volume in members:
        api.create_volume(volume)
    for pattern, volume in enumerate(members, start=0x41):
        wait_status(api, server, volume["id"], "available")
        _through_nbd(
            api, volume, lambda info, p=pattern: nbdclient.write(info, 0, MiB, p)
        )
    record = api.get_group(server, group["id"])
    assert sorted(record["volume_ids"]) == sorted(v["id"] for v in members)

    gsnap = {"id": str(uuid.uuid4()), "group_id": group["id"], "name": "nightly"}
    api.create_group_snapshot(server, gsnap)
    taken = _wait(lambda: api.get_group_snapshot(server, gsnap["id"]), "available")
    assert len(taken["snapshot_ids"]) == 3
    snaps = [api.get_snapshot(server, sid) for sid in taken["snapshot_ids"]]
    assert {s["volume_id"] for s in snaps} == {v["id"] for v in members}
    assert all(s["status"] == "available" for s in snaps)
    events.wait_event("group_snapshot.create.end", gsnap["id"])

    copy = _group(worker, name="restored")
    by_volume = {s["volume_id"]: s["id"] for s in snaps}
    new = [new_volume(worker, "b1", snapshot_id=by_volume[v["id"]]) for v in members]
    api.create_group_from_src(copy, new, group_snapshot_id=gsnap["id"])
    made = _wait(lambda: api.get_group(server, copy["id"]), "available")
    assert sorted(made["volume_ids"]) == sorted(v["id"] for v in new)
    for pattern, volume in enumerate(new, start=0x41):
        assert _through_nbd(
            api, volume, lambda info, p=pattern: nbdclient.holds(info, 0, MiB, p)
        )

    clone = _group(worker)
    cloned = [new_volume(worker, "b1", source_volid=v["id"]) for v in new]
    api.create_group_from_src(clone, cloned, source_group_id=copy["id"])
    _wait(lambda: api.get_group(server, clone["id"]), "available")
    assert _through_nbd(
        api, cloned[2], lambda info: nbdclient.holds(info, 0, MiB, 0x43)
    )

    groups = {g["id"] for g in api.list_groups(server)}
    assert groups == {group["id"], copy["id"], clone["id"]}

    api.delete_group_snapshot(server, gsnap)
    _gone(
        lambda: api.get_group_snapshot(server, gsnap["id"]),
        exception.GroupSnapshotNotFound,
    )
    _gone(lambda: api.get_snapshot(server, snaps[0]["id"]), exception.SnapshotNotFound)
    for doomed in (group, copy, clone):
        api.delete_group(doomed, delete_volumes=True)
        _gone(lambda d=doomed: api.get_group(server, d["id"]), exception.GroupNotFound)
    assert api.list_volumes(server) == []
    left = [p.name for p in (tmp_path / "pool").rglob("*") if p.is_file()]
    assert left == []
    assert worker.stop() == 0


@pytest.mark.parametrize("members", [0, 2])
def test_what_a_group_refuses(
    members: int,
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[[Worker], Notifications],
) -> None:
    backend = {
        "volume_driver": "fake",
        "fake_undeclared_features": "consistent_group_snapshot",
    }
    worker = make_worker({"b1": backend}).start().wait_ready()
    api, events, server = client(worker), notifications(worker), worker.server("b1")
    # This backend cannot snapshot a group at one point in time.
    consistent = _group(worker, group_type=CONSISTENT)
    api.create_group(consistent)
    failed = _wait(lambda: api.get_group(server, consistent["id"]), "error")
    assert "consistent group snapshots" in failed["error"]
    events.wait_event("group.create.error", consistent["id"])

    group = _group(worker)
    api.create_group(group)
    _wait(lambda: api.get_group(server, group["id"]), "available")
    volumes = [new_volume(worker, "b1") for _ in range(members)]
    for volume in volumes:
        api.create_volume(volume)
        wait_status(api, server, volume["id"], "available")
    api.update_group(group, add_volumes=[v["id"] for v in volumes])
    events.wait_for(lambda _: len(events.events("group.update.end")) == 1)
    record = api.get_group(server, group["id"])
    assert sorted(record["volume_ids"]) == sorted(v["id"] for v in volumes)
    if members:
        # Not while it has members, unless they go with it.
        api.delete_group(group)
        events.wait_event("group.delete.error", group["id"])
        assert api.get_group(server, group["id"])["status"] == "available"
        api.update_group(group, remove_volumes=[volumes[0]["id"]])
        events.wait_for(lambda _: len(events.events("group.update.end")) == 2)
        record = api.get_group(server, group["id"])
        assert record["volume_ids"] == [volumes[1]["id"]]
    else:
        # A group snapshot of no volumes is refused.
        gsnap = {"id": str(uuid.uuid4()), "group_id": group["id"]}
        api.create_group_snapshot(server, gsnap)
        _wait(lambda: api.get_group_snapshot(server, gsnap["id"]), "error")
    with pytest.raises(exception.GroupNotFound):
        api.get_group(server, str(uuid.uuid4()))
    assert worker.stop() == 0


@pytest.mark.parametrize("groups", ["native", "generic"])
def test_the_driver_or_the_generic_fallback_does_the_work(
    groups: str,
    tmp_path: pathlib.Path,
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
) -> None:
    log = tmp_path / "effects.jsonl"
    backend: dict[str, Any] = {"volume_driver": "fake", "fake_effects_log": log}
    if groups == "generic":
        backend["fake_undeclared_features"] = "groups,consistent_group_snapshot"
    worker = make_worker({"b1": backend}).start().wait_ready()
    api, server = client(worker), worker.server("b1")
    group = _group(worker)
    api.create_group(group)
    _wait(lambda: api.get_group(server, group["id"]), "available")
    members = [new_volume(worker, "b1", group_id=group["id"]) for _ in range(3)]
    for volume in members:
        api.create_volume(volume)
        wait_status(api, server, volume["id"], "available")
    gsnap = {"id": str(uuid.uuid4()), "group_id": group["id"]}
    api.create_group_snapshot(server, gsnap)
    taken = _wait(lambda: api.get_group_snapshot(server, gsnap["id"]), "available")
    effects = [json.loads(line)["method"] for line in log.read_text().splitlines()]
    if groups == "native":
        assert effects.count("create_group_snapshot") == 1
        assert "create_snapshot" not in effects
    else:
        assert "create_group_snapshot" not in effects
        assert effects.count("create_snapshot") == 3
    assert len(taken["snapshot_ids"]) == 3
    assert worker.stop() == 0
