"""kill -9 around group snapshots and groups made from them, on the rbd
driver: after each restart every record and the Ceph pool agree.

- every group is an RBD group holding exactly its members' images;
- every available group snapshot is one complete RBD group snapshot of its
  group, and nothing else is (no half-made group snapshot, none that an
  ``error`` record left behind);
- every volume record has its image, and no image is without a record (no
  half-made ``.creating`` image).

An RBD group snapshot takes milliseconds, so the kill lands at a random
moment after the cast: inside the operation, before or after it. The seed is
printed; set ``VOLWORKER_FAULT_SEED`` to replay a run.
"""

from __future__ import annotations

import random
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.ceph import CephCluster
from tests.contract.harness_rbd import purge
from tests.faults.rig import BACKEND, ended_cleanly
from tests.faults.tally import Tally
from tests.faults.test_kill_groups import _settled
from tests.faults.test_kill_rbd import on_ceph, seeded
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import Worker

ROUNDS = 4
MEMBERS = 4


def _kill_restart(worker: Worker, rng: random.Random, tally: Tally) -> None:
    time.sleep(rng.uniform(0, 0.4))
    worker.signal(signal.SIGKILL)
    worker.wait(10)
    tally.faults += 1
    worker.start().wait_ready(60)


def _pool(ioctx: Any) -> tuple[set[str], dict[str, set[str]], dict[str, dict]]:
    """The pool's images, each RBD group's images, and each RBD group's
    snapshots (name -> state)."""
    import rbd

    api = rbd.RBD()
    images = set(api.list(ioctx))
    members, snaps = {}, {}
    for name in api.group_list(ioctx):
        with rbd.Group(ioctx, name) as group:
            members[name] = {i["name"] for i in group.list_images()}
            snaps[name] = {s["name"]: s["state"] for s in group.list_snaps()}
    return images, members, snaps


def _audit(
    api: VolumeAPI, server: str, ceph: CephCluster, groups: list[str], gsnaps: list
) -> list[str]:
    import rbd

    with ceph.admin() as ioctx:
        images, members, snaps = _pool(ioctx)
    problems = []
    volumes: set[str] = set()
    for group_id in groups:
        record = api.get_group(server, group_id)
        wanted = {f"volume-{v}" for v in record["volume_ids"]}
        volumes |= wanted
        found = members.get(f"group-{group_id}", set())
        if found != wanted:
            problems.append(f"group {group_id}: RBD group {found}, record {wanted}")
    complete = rbd.RBD_GROUP_SNAP_STATE_COMPLETE
    taken = {
        (g, n) for g, held in snaps.items() for n, s in held.items() if s == complete
    }
    half = {
        (g, n) for g, held in snaps.items() for n, s in held.items() if s != complete
    }
    available = {
        (f"group-{gs['group_id']}", f"group-snapshot-{gs['id']}")
        for gs in gsnaps
        if _status(api, server, gs["id"]) == "available"
    }
    if taken != available or half:
        problems.append(
            f"group snapshots: pool {taken} (half {half}), records {available}"
        )
    if images != volumes:
        problems.append(
            f"images without records {images - volumes}, "
            f"records without images {volumes - images}"
        )
    return problems


def _status(api: VolumeAPI, server: str, group_snapshot_id: str) -> str | None:
    try:
        return str(api.get_group_snapshot(server, group_snapshot_id)["status"])
    except Exception:
        return None


@pytest.mark.time_limit(240)
def test_kill_9_around_rbd_group_snapshots_and_groups_from_them(
    shared_broker: None,
    ceph_cluster: CephCluster,
    make_worker: Callable[..., Worker],
    client: Callable[..., VolumeAPI],
    tally: Tally,
) -> None:
    rng = seeded()
    worker = on_ceph(ceph_cluster, make_worker)
    worker.start().wait_ready(60)
    api, server = client(worker), worker.server(BACKEND)
    group = {"id": str(uuid.uuid4()), "host": server}
    api.create_group(group)
    _settled(lambda: api.get_group(server, group["id"]))
    for _ in range(MEMBERS):
        member = {"id": str(uuid.uuid4()), "size": 1, "host": server}
        member["group_id"] = group["id"]
        api.create_volume(member)
        _settled(lambda v=member: api.get_volume(server, v["id"]))
    tally.sent += 1 + MEMBERS
    groups, gsnaps = [group["id"]], []
    for _ in range(ROUNDS):
        gsnap = {"id": str(uuid.uuid4()), "group_id": group["id"]}
        gsnaps.append(gsnap)
        api.create_group_snapshot(server, gsnap)
        _kill_restart(worker, rng, tally)
        taken = _settled(lambda g=gsnap: api.get_group_snapshot(server, g["id"]))
        assert taken["status"] == "available", taken

        copy = {"id": str(uuid.uuid4()), "host": server}
        new = [
            {"id": str(uuid.uuid4()), "size": 1, "host": server, "snapshot_id": s}
            for s in taken["snapshot_ids"]
        ]
        api.create_group_from_src(copy, new, group_snapshot_id=gsnap["id"])
        _kill_restart(worker, rng, tally)
        made = _settled(lambda c=copy: api.get_group(server, c["id"]))
        assert made["status"] == "available", made
        groups.append(copy["id"])
        tally.sent += 2
        problems = _audit(api, server, ceph_cluster, groups, gsnaps)
        assert problems == [], problems
    recovered = worker.log().count("Recovering create_group")
    print(f"{recovered} of {2 * ROUNDS} kills cut a group operation short")
    assert ended_cleanly(worker) == []
    assert worker.stop() == 0
    with ceph_cluster.admin() as ioctx:
        purge(ioctx)
