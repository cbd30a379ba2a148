"""The pool's filesystem fails mid-load: read-only, or full.

The pool lives on a small ext4 on a loop device. A volume gets known bytes
through its NBD export (qemu-io) and a snapshot before the fault. Mid-load
the filesystem is remounted read-only (or filled to its last block) for a
while, and probes that must touch the disk (a create, a snapshot, a clone)
are sent meanwhile. Operations hit by the fault must fail with a clear error
in their status and ``.error`` notification; nothing may be lost, doubled,
stuck or left half-made; the known bytes must read back the same; and once
the filesystem is healthy new work must succeed.
"""

from __future__ import annotations

import pathlib
import random
import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import IN_CI, require_root
from tests.contract import nbdclient
from tests.faults.audit import FINISHED, account, check_disk, wait_quiet
from tests.faults.load import Op, Planner, Sender
from tests.faults.loopfs import TOOLS, LoopFS, loop_filesystem
from tests.faults.rig import (
    BACKEND,
    file_backend,
    journal_of,
    state_dir,
    unexpected_errors,
    wait_for,
)
from tests.faults.tally import Tally
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker

MiB = 1024**2
#: (pattern, offset, length) written to the data volume before the fault
DATA = ((0x5A, 0, 12 * MiB), (0xA5, 512 * MiB, 4 * MiB))
ZEROS = (64 * MiB, 8 * MiB)
#: What a failure's error may say: the fault itself, or a refusal that
#: follows from an earlier failure (an object left in error, or gone).
REFUSALS = (
    "Invalid volume:",
    "Invalid input received:",
    "is busy:",
    "could not be found",
)


@pytest.fixture
def pool_fs(tmp_path: pathlib.Path) -> Iterator[LoopFS]:
    require_root("a loop-mounted filesystem")
    missing = [t for t in (*TOOLS, "qemu-io") if shutil.which(t) is None]
    if missing:
        message = f"a loop-mounted pool needs {', '.join(missing)}"
        if IN_CI:
            pytest.fail(message + " (CI=true needs it)")
        pytest.skip(message)
    with loop_filesystem(tmp_path / "fs", owner=tmp_path) as fs:
        yield fs


class Rig:
    """A worker on the loop filesystem's pool, its client and its events."""

    def __init__(
        self, worker: Worker, api: VolumeAPI, events: Notifications, pool: pathlib.Path
    ) -> None:
        self.worker, self.api, self.events, self.pool = worker, api, events, pool
        self.server = worker.server(BACKEND)
        self.probes: list[Op] = []

    def volume(self, size: int = 1, **fields: Any) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "size": size, "host": self.server, **fields}

    def settled(self, volume_id: str, timeout: float = 60) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            record = self.api.get_volume(self.server, volume_id)
            return None if record["status"] in ("creating", "extending") else record

        record: dict[str, Any] = wait_for(final, timeout, f"volume {volume_id}")
        return record

    def snapshot_settled(self, snapshot_id: str, timeout: float = 60) -> str:
        def final() -> str | None:
            status = str(self.api.get_snapshot(self.server, snapshot_id)["status"])
            return None if status == "creating" else status

        status: str = wait_for(final, timeout, f"snapshot {snapshot_id}")
        return status

    def write_data(self, volume: dict[str, Any]) -> None:
        connector = {"host": "data-writer"}
        info = self.api.initialize_connection(volume, connector)
        try:
            for pattern, offset, length in DATA:
                nbdclient.write(info, offset, length, pattern)
        finally:
            self.api.terminate_connection(volume, connector)

    def data_problems(self, volume: dict[str, Any]) -> list[str]:
        """What of the known bytes does not read back through NBD."""
        connector = {"host": "data-reader"}
        info = self.api.initialize_connection(volume, connector)
        try:
            problems = [
                f"volume {volume['id']}: {length} bytes at {offset} are not "
                f"{pattern:#x}"
                for pattern, offset, length in (*DATA, (0, *ZEROS))
                if not nbdclient.holds(info, offset, length, pattern)
            ]
        finally:
            self.api.terminate_connection(volume, connector)
        return problems

    def probe(self, method: str, **kwargs: Any) -> Op:
        """Send a cast that must touch the disk while the fault lasts."""
        op = Op(method, kwargs)
        cctxt = self.api.client.prepare(server=self.server)
        cctxt.cast({"request_id": op.request_id}, method, **kwargs)
        self.probes.append(op)
        return op

    def probes_finished(self) -> bool:
        wanted = {op.request_id for op in self.probes}
        rows = journal_of(self.worker).operations()
        done = {r["request_id"] for r in rows if r["state"] in FINISHED}
        return wanted <= done


@pytest.fixture
def rig(
    pool_fs: LoopFS,
    make_worker: Callable[..., Worker],
    client: Callable[..., VolumeAPI],
    notifications: Callable[..., Notifications],
    shared_broker: None,
) -> Rig:
    pool = pool_fs.mount / "pool"
    worker = make_worker(
        file_backend(pool), defaults={"max_concurrent_operations": 4}
    ).start()
    worker.wait_ready()
    return Rig(worker, client(worker), notifications(worker), pool)


def _unclear(rows: list[dict[str, Any]], cause: str) -> list[str]:
    return [
        f"{r['action']} {r['resource_id']}: {r['error']}"
        for r in rows
        if r["state"] == "failed"
        and not (
            cause in str(r["error"]) or any(p in str(r["error"]) for p in REFUSALS)
        )
    ]


def _run_fault(
    rig: Rig,
    load: Callable[..., Sender],
    tally: Tally,
    inject: Callable[[], object],
    heal: Callable[[], object],
    cause: str,
    blank_fails: bool = True,
) -> list[str]:
    """Data, load, fault with probes, healing; return every problem seen.

    The probes are a blank create (which a full pool may still hold: it
    writes no data), a snapshot and a clone of the data volume.
    """
    data = rig.volume()
    rig.api.create_volume(data)
    assert rig.settled(data["id"])["status"] == "available"
    rig.write_data(data)
    snap = {"id": str(uuid.uuid4()), "volume_id": data["id"]}
    rig.api.create_snapshot(rig.server, snap)
    assert rig.snapshot_settled(snap["id"]) == "available"

    planner = Planner(random.Random(), rig.server, attach=False, live=(8, 24))
    sender = load(rig.api, rig.server, planner.plan(200), pace=0.02)
    wait_for(lambda: sender.sent > 40, 30, "load under way")
    inject()
    tally.faults += 1
    probes = [
        rig.probe("create_volume", volume=rig.volume()),
        rig.probe(
            "create_snapshot",
            snapshot={"id": str(uuid.uuid4()), "volume_id": data["id"]},
        ),
        rig.probe("create_volume", volume=rig.volume(source_volid=data["id"])),
    ]
    wait_for(rig.probes_finished, 60, "the probes to finish")
    heal()
    sender.join(120)
    assert not sender.is_alive(), "the load did not finish"

    journal = journal_of(rig.worker)
    quiet = wait_quiet(journal, sender.casts + probes, timeout=60)
    findings = account(journal, sender.casts + probes, expect_success=False)
    rows = journal.operations()
    failed = [r for r in rows if r["state"] == "failed"]
    print(
        f"{cause}: {len(failed)} of {len(rows)} operations failed, quiet={quiet}; "
        f"errors: {sorted({str(r['error'])[:90] for r in failed})[:6]}"
    )
    findings.failed += sender.failures
    findings.mismatched += [f"unclear error: {u}" for u in _unclear(rows, cause)]
    findings.mismatched += _probe_problems(
        rig, probes if blank_fails else probes[1:], cause
    )
    findings.mismatched += check_disk(journal, rig.pool, state_dir(rig.worker))
    findings.data += rig.data_problems(data)
    restored, not_resumed = _resumes(rig, snap)
    findings.mismatched += not_resumed
    if restored is not None:
        findings.data += rig.data_problems(restored)
    tally.sent += len(sender.casts) + len(probes)
    tally.read_back += 1 if restored is None else 2
    tally.count(findings)
    problems = findings.report(limit=100).splitlines() if findings else []
    return problems + unexpected_errors(rig.worker)


def _probe_problems(rig: Rig, probes: list[Op], cause: str) -> list[str]:
    """Each probe failed, saying why in its status and its notification."""
    problems = []
    by_request = {r["request_id"]: r for r in journal_of(rig.worker).operations()}
    for op in probes:
        row = by_request.get(op.request_id, {})
        if row.get("state") != "failed" or cause not in str(row.get("error")):
            problems.append(f"probe {op.method} did not fail with {cause!r}: {row}")
            continue
        kind = "snapshot" if "snapshot" in op.kwargs else "volume"
        obj_id = op.kwargs[kind]["id"]
        get = rig.api.get_snapshot if kind == "snapshot" else rig.api.get_volume
        record = get(rig.server, obj_id)
        if record["status"] != "error" or cause not in str(record.get("error")):
            problems.append(f"probe {op.method}: record says {record}")
        event = rig.events.wait_event(f"{kind}.create.error", obj_id, timeout=10)
        if cause not in str(event["payload"].get("error")):
            problems.append(f"probe {op.method}: notification says {event['payload']}")
    return problems


def _resumes(rig: Rig, snap: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """New work succeeds on the healed pool. Returns the volume made from
    the old snapshot (to read back; None if it failed) and the problems."""
    fresh = rig.volume()
    rig.api.create_volume(fresh)
    restored = rig.volume(snapshot_id=snap["id"])
    rig.api.create_volume(restored)
    problems = [
        f"after healing, volume {v['id']} is {record['status']}: {record.get('error')}"
        for v in (fresh, restored)
        if (record := rig.settled(v["id"]))["status"] != "available"
    ]
    return (None if problems else restored), problems


@pytest.mark.time_limit(90)
def test_read_only_pool(
    rig: Rig, pool_fs: LoopFS, load: Callable[..., Sender], tally: Tally
) -> None:
    problems = _run_fault(
        rig,
        load,
        tally,
        inject=pool_fs.read_only,
        heal=pool_fs.read_write,
        cause="Read-only file system",
    )
    assert problems == [], "\n".join(problems)
    assert rig.worker.stop() == 0


@pytest.mark.time_limit(90)
def test_full_pool(
    rig: Rig, pool_fs: LoopFS, load: Callable[..., Sender], tally: Tally
) -> None:
    problems = _run_fault(
        rig,
        load,
        tally,
        inject=pool_fs.fill,
        heal=pool_fs.unfill,
        cause="No space left on device",
        blank_fails=False,
    )
    assert problems == [], "\n".join(problems)
    assert rig.worker.stop() == 0
