"""kill -9 at a random moment of a mixed load, on the rbd driver.

The rounds of :mod:`tests.faults.test_kill` (creates, clones, creates from
snapshots, online extends, snapshots and their deletion, reverts, deletes,
attach and detach) against a worker whose backend is a Ceph pool, fewer of
them, run by the same :class:`~tests.faults.rounds.KillRounds`: the second
round also kills the worker again while it recovers. After every round the
journal and the notifications are accounted for as in the file rounds, and
the pool is audited instead of a directory:

- every volume record has its image, of the record's size, and every
  snapshot record its snapshot on its volume's image;
- no image or snapshot without a record, except what is kept for clones
  (``.deleted``, ``.clone_snap``) while a clone still hangs from it; no
  half-made ``.creating`` image; no collect note left pending;
- every attachment record has its connector in the image's metadata, and no
  image names a connector without one.

The seed is printed; set ``VOLWORKER_FAULT_SEED`` to replay a run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from tests.ceph import CephCluster
from tests.contract.harness_rbd import purge
from tests.faults.audit import Findings, Journal
from tests.faults.load import Planner, Sender
from tests.faults.rig import BACKEND, unexpected_errors
from tests.faults.rounds import KillRounds
from tests.faults.tally import Tally
from tests.faults.test_kill import _seed
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker

ROUNDS = 2
OPS_PER_ROUND = 160
GiB = 1024**3
CONNECTOR_KEY = "volworker.connector."
KEPT = (".deleted", ".clone_snap")


def _image_view(ioctx: Any) -> dict[str, dict[str, Any]]:
    """Every image of the pool: size, user snapshots (name -> clone count,
    size), snapshots left half removed, and the connectors in its metadata;
    None for an image that cannot be opened (half made or half removed)."""
    import rbd

    found: dict[str, Any] = {}
    for name in rbd.RBD().list(ioctx):
        try:
            with rbd.Image(ioctx, name, read_only=True) as image:
                found[name] = _one_image(image, rbd)
        except rbd.ImageNotFound:
            found[name] = None
    return found


def _one_image(image: Any, rbd: Any) -> dict[str, Any]:
    snaps, trashed, ids = {}, [], {}
    for snap in image.list_snaps():
        if snap["namespace"] != rbd.RBD_SNAP_NAMESPACE_TYPE_USER:
            trashed.append(snap["name"])
            continue
        image.set_snap(snap["name"])
        snaps[snap["name"]] = (len(list(image.list_children2())), snap["size"])
        image.set_snap(None)
        ids[snap["id"]] = snap["name"]
    hosts = {
        key.removeprefix(CONNECTOR_KEY)
        for key, _ in image.metadata_list()
        if key.startswith(CONNECTOR_KEY)
    }
    return {
        "id": image.id(),
        "size": image.size(),
        "snaps": snaps,
        "snap_ids": ids,
        "trashed": trashed,
        "hosts": hosts,
    }


def _check_records(journal: Journal, images: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    volumes, snapshots = journal.volumes(), journal.snapshots()
    for vid, rec in volumes.items():
        image = images.get(f"volume-{vid}") or None
        if image is None:
            if rec["status"] in ("available", "in-use", "error_extending"):
                problems.append(f"volume {vid} is {rec['status']} but has no image")
        elif rec["status"] != "error" and image["size"] != rec["size"] * GiB:
            problems.append(
                f"volume {vid} ({rec['status']}) is {rec['size']} GiB but its image "
                f"has {image['size']} bytes"
            )
    for sid, rec in snapshots.items():
        image = images.get(f"volume-{rec['volume_id']}") or {}
        snaps = image.get("snaps", {})
        found = snaps.get(f"snapshot-{sid}")
        if found is None:
            if rec["status"] == "available":
                problems.append(f"snapshot {sid} is available but not on its image")
        elif rec["status"] != "error" and found[1] != rec["size"] * GiB:
            problems.append(f"snapshot {sid} records {rec['size']} GiB, has {found[1]}")
    return problems


def _check_orphans(journal: Journal, images: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    volumes, snapshots = journal.volumes(), journal.snapshots()
    for name, image in images.items():
        if image is None:
            problems.append(f"image {name} cannot be opened (half made or removed)")
            continue
        problems.extend(f"{name}@{snap} is half removed" for snap in image["trashed"])
        kept = name.endswith(".deleted") and any(n for n, _ in image["snaps"].values())
        if not kept and name.removeprefix("volume-") not in volumes:
            problems.append(f"orphan image {name}")
        for snap, (clones, _) in image["snaps"].items():
            if snap.endswith(KEPT):
                if not clones:
                    problems.append(f"orphan kept snapshot {name}@{snap}")
                continue
            rec = snapshots.get(snap.removeprefix("snapshot-"))
            if rec is None or f"volume-{rec['volume_id']}" != name:
                problems.append(f"orphan snapshot {name}@{snap}")
    return problems


def _check_attachments(
    journal: Journal, images: dict[str, dict[str, Any]]
) -> list[str]:
    recorded: dict[str, set[str]] = {}
    for att in journal.attachments():
        recorded.setdefault(f"volume-{att['volume_id']}", set()).add(
            att["connector_host"]
        )
    return [
        f"{name} names connectors {sorted(image['hosts'])}, the records "
        f"{sorted(recorded.get(name, set()))}"
        for name, image in images.items()
        if image is not None and image["hosts"] != recorded.get(name, set())
    ]


def _check_notes(
    notes: list[str], trash: list[str], images: dict[str, dict[str, Any]]
) -> list[str]:
    """A note left must be of a kept snapshot that clones still hang from,
    or of a clone in the trash (waiting for an OSD to forget a dead client's
    watch)."""
    by_id = {image["id"]: image for image in images.values() if image}
    problems = []
    for key in notes:
        image_id, snap_id, child = [*key.split("."), "", "", ""][2:5]
        if child in trash:
            continue
        image = by_id.get(image_id) or {}
        name = image.get("snap_ids", {}).get(int(snap_id) if snap_id.isdigit() else -1)
        clones = image.get("snaps", {}).get(name, (0, 0))[0]
        if child != "-" or not name or not name.endswith(KEPT) or not clones:
            problems.append(f"collect note left: {key}")
    return problems


def check_pool(journal: Journal, ceph: CephCluster) -> list[str]:
    """Records against the pool's images, snapshots, notes and metadata."""
    import rbd

    with ceph.admin() as ioctx:
        images = _image_view(ioctx)
        trash = [entry["id"] for entry in rbd.RBD().trash_list(ioctx)]
        notes = [
            key
            for key, _ in rbd.RBD().pool_metadata_list(ioctx)
            if key.startswith("volworker.collect.")
        ]
    problems = _check_records(journal, images)
    problems += _check_orphans(journal, images)
    problems += _check_attachments(journal, images)
    problems += _check_notes(notes, trash, images)
    return problems


def seeded() -> random.Random:
    """A random source of the run's seed, printed to replay the run."""
    seed = _seed()
    print(f"VOLWORKER_FAULT_SEED={seed}")
    return random.Random(seed)


def on_ceph(
    ceph: CephCluster, make_worker: Callable[..., Worker], **kwargs: Any
) -> Worker:
    """A worker (not started) whose backend is the emptied test pool."""
    with ceph.admin() as ioctx:
        purge(ioctx)
    return make_worker({BACKEND: ceph.backend()}, **kwargs)


@pytest.mark.time_limit(150)
def test_kill_9_during_mixed_load_on_rbd(
    shared_broker: None,
    ceph_cluster: CephCluster,
    make_worker: Callable[..., Worker],
    client: Callable[..., VolumeAPI],
    notifications: Callable[..., Notifications],
    load: Callable[..., Sender],
    tally: Tally,
    kill_rounds: list[dict[str, Any]],
) -> None:
    rng = seeded()
    worker = on_ceph(
        ceph_cluster,
        make_worker,
        defaults={"max_concurrent_operations": 8, "graceful_shutdown_timeout": 5},
    )
    events = notifications(worker)
    worker.start().wait_ready(60)
    api = client(worker)

    def check(journal: Journal) -> list[str]:
        # a stats report is also when the driver looks at its notes again
        api.get_capabilities(worker.server(BACKEND), discover=True)
        return check_pool(journal, ceph_cluster)

    planner = Planner(rng, worker.server(BACKEND), online_extend=True)
    rounds = KillRounds(
        worker, api, events, planner, load, tally, rng, check=check, ready_timeout=60
    )
    findings = Findings()
    for number in range(1, ROUNDS + 1):
        findings.extend(rounds.run(number, OPS_PER_ROUND))
    kill_rounds.append(
        rounds.summary(
            "rbd-memstore",
            driver="rbd",
            pool=ceph_cluster.pool,
            database="sqlite",
            filesystem="memstore",
            rounds=ROUNDS,
            operations=OPS_PER_ROUND,
        )
    )
    assert not findings, findings.report(limit=40)
    assert unexpected_errors(worker) == []
    assert worker.stop() == 0
    with ceph_cluster.admin() as ioctx:
        purge(ioctx)
