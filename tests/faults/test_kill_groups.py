"""kill -9 in the middle of a group snapshot and of a group made from it:
after the restart each group object is whole or gone, never half made. No
member snapshot or volume is orphaned on the backend (the fake backend's
effects log, restored at start, is the backend's evidence), nothing stays
in a transitional status, and each group operation's effect appears once
per run the journal allows."""

from __future__ import annotations

import pathlib
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.faults.audit import TRANSITIONAL
from tests.faults.rig import BACKEND, ended_cleanly, journal_of, wait_for
from tests.faults.tally import Tally
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import Worker
from volworker_drivers.fake import effects, objects

SLOW = 2.0  # seconds each group method takes, so a kill lands inside it


def _rows(worker: Worker, request_id: str) -> list[dict[str, Any]]:
    return [r for r in journal_of(worker).operations() if r["request_id"] == request_id]


def _running(worker: Worker, request_id: str) -> bool:
    return any(r["state"] == "running" for r in _rows(worker, request_id))


def _kill_restart(worker: Worker, tally: Tally) -> None:
    worker.signal(signal.SIGKILL)
    worker.wait(10)
    tally.faults += 1
    worker.start().wait_ready()


def _settled(get: Callable[[], dict[str, Any]], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (record := get())["status"] in TRANSITIONAL | {"updating"}:
        assert time.monotonic() < deadline, record
        time.sleep(0.05)
    return record


@dataclass
class _Held:
    volumes: dict[str, objects.FakeObject] = field(default_factory=dict)
    snapshots: dict[str, objects.FakeObject] = field(default_factory=dict)
    unmanaged: dict[str, objects.FakeObject] = field(default_factory=dict)
    unmanaged_snapshots: dict[str, objects.FakeObject] = field(default_factory=dict)


def _backend(log: pathlib.Path) -> set[str]:
    """What the fake backend holds, rebuilt from its effects as at a start."""
    held = _Held()
    for entry in effects.read(str(log)):
        objects.apply(held, entry["method"], entry)
    return {*held.volumes, *held.snapshots}


@pytest.mark.time_limit(150)
def test_kill_9_inside_group_snapshot_and_create_from_src(
    tmp_path: pathlib.Path,
    shared_broker: None,
    make_worker: Callable[..., Worker],
    client: Callable[..., VolumeAPI],
    tally: Tally,
) -> None:
    log = tmp_path / "effects.jsonl"
    backend = {
        "volume_driver": "fake",
        "fake_effects_log": log,
        "fake_method_latency": (
            f"create_group_snapshot:{SLOW},create_group_from_src:{SLOW}"
        ),
    }
    worker = make_worker({BACKEND: backend}).start().wait_ready()
    api, server = client(worker), worker.server(BACKEND)
    group = {"id": str(uuid.uuid4()), "host": server}
    api.create_group(group)
    _settled(lambda: api.get_group(server, group["id"]))
    members = [
        {"id": str(uuid.uuid4()), "size": 1, "host": server, "group_id": group["id"]}
        for _ in range(3)
    ]
    for volume in members:
        api.create_volume(volume)
    for volume in members:
        _settled(lambda v=volume: api.get_volume(server, v["id"]))
    tally.sent += 4

    gsnap = {"id": str(uuid.uuid4()), "group_id": group["id"]}
    ctxt = {"request_id": f"req-{uuid.uuid4()}"}
    api.create_group_snapshot(server, gsnap, ctxt)
    wait_for(lambda: _running(worker, ctxt["request_id"]), 30, "the group snapshot")
    _kill_restart(worker, tally)
    taken = _settled(lambda: api.get_group_snapshot(server, gsnap["id"]))
    assert taken["status"] == "available", taken
    snaps = [api.get_snapshot(server, s) for s in taken["snapshot_ids"]]
    assert sorted(s["volume_id"] for s in snaps) == sorted(v["id"] for v in members)
    assert all(s["status"] == "available" for s in snaps)

    copy = {"id": str(uuid.uuid4()), "host": server}
    new = [
        {"id": str(uuid.uuid4()), "size": 1, "host": server, "snapshot_id": s["id"]}
        for s in snaps
    ]
    ctxt = {"request_id": f"req-{uuid.uuid4()}"}
    api.create_group_from_src(copy, new, group_snapshot_id=gsnap["id"], ctxt=ctxt)
    wait_for(lambda: _running(worker, ctxt["request_id"]), 30, "the group copy")
    _kill_restart(worker, tally)
    made = _settled(lambda: api.get_group(server, copy["id"]))
    assert made["status"] == "available", made
    assert sorted(made["volume_ids"]) == sorted(v["id"] for v in new)
    tally.sent += 2

    held = _backend(log)
    recorded = {f"volume-{v['id']}" for v in members + new} | {
        f"snapshot-{s['id']}" for s in snaps
    }
    assert held == recorded, (held - recorded, recorded - held)
    done = Counter(e["method"] for e in effects.read(str(log)))
    # Each group method ran once, or once more for the run the kill cut:
    # the journal found it running, so the restart had to redo it.
    assert 1 <= done["create_group_snapshot"] <= 2
    assert 1 <= done["create_group_from_src"] <= 2
    assert ended_cleanly(worker) == []
    assert worker.stop() == 0


@pytest.mark.time_limit(90)
def test_a_failed_group_snapshot_leaves_nothing(
    tmp_path: pathlib.Path,
    shared_broker: None,
    make_worker: Callable[..., Worker],
    client: Callable[..., VolumeAPI],
) -> None:
    log = tmp_path / "effects.jsonl"
    backend = {
        "volume_driver": "fake",
        "fake_effects_log": log,
        "fake_undeclared_features": "groups",
        # The generic fallback: the second member's snapshot fails.
        "fake_healthy_calls": "create_snapshot:1",
        "fake_failures": "create_snapshot:VolumeBackendAPIException",
    }
    worker = make_worker({BACKEND: backend}).start().wait_ready()
    api, server = client(worker), worker.server(BACKEND)
    group = {"id": str(uuid.uuid4()), "host": server}
    api.create_group(group)
    _settled(lambda: api.get_group(server, group["id"]))
    members = [
        {"id": str(uuid.uuid4()), "size": 1, "host": server, "group_id": group["id"]}
        for _ in range(3)
    ]
    for volume in members:
        api.create_volume(volume)
        _settled(lambda v=volume: api.get_volume(server, v["id"]))
    gsnap = {"id": str(uuid.uuid4()), "group_id": group["id"]}
    api.create_group_snapshot(server, gsnap)
    failed = _settled(lambda: api.get_group_snapshot(server, gsnap["id"]))
    assert failed["status"] == "error" and failed["snapshot_ids"] == []
    assert not {n for n in _backend(log) if n.startswith("snapshot-")}
    assert worker.stop() == 0
