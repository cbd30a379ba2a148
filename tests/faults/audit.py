"""Accounting after a fault: the worker's journal and records against what
was sent, and against what is on disk.

Everything here reads: the worker's database (``journal.py``), the pool
directory, the backend's NBD state directory and ``/proc``.

- lost: a cast sent whose request_id never reached a finished journal state,
  or a call answered "ok" without a journal entry that is done;
- duplicated: a request_id with more than one journal entry;
- stuck: a journal entry still accepted or running, or a volume or snapshot
  in a transitional status, once the worker went quiet;
- failed: an operation the load expected to succeed that failed;
- mismatched: a record that disagrees with the disk (a missing or wrongly
  sized file, an orphan file, a leftover temp file, an NBD server without an
  attachment or an attachment without one) or with the load's model;
- data: bytes read back that are not what the object must hold (``data.py``).
"""

from __future__ import annotations

import os
import pathlib
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from tests.faults.journal import Journal
from tests.faults.load import CallOutcome, Model, Op

__all__ = [
    "KINDS",
    "Findings",
    "account",
    "check_disk",
    "check_model",
    "nbd_servers",
    "wait_quiet",
]

GiB = 1024**3
TRANSITIONAL = frozenset({"creating", "deleting", "extending", "reverting"})
FINISHED = frozenset({"done", "failed", "rolled_back", "skipped"})
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_VOLUME = re.compile(f"volume-({_UUID})")
_SNAPSHOT = re.compile(f"snapshot-({_UUID})")
_PID_FILE = re.compile(f"--pid-file=.*/volume-({_UUID})\\.[0-9a-f]+\\.pid")


#: The kinds of finding, in the order the suite's closing line gives them.
KINDS = ("lost", "failed", "mismatched", "stuck", "duplicated", "data")


@dataclass
class Findings:
    """What one audit found; each entry says what and which object."""

    lost: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    data: list[str] = field(default_factory=list)

    def extend(self, other: Findings) -> None:
        for name in KINDS:
            getattr(self, name).extend(getattr(other, name))

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in KINDS)

    def report(self, limit: int = 15) -> str:
        lines = []
        for name in KINDS:
            items = getattr(self, name)
            if items:
                lines.append(f"{name} ({len(items)}):")
                lines.extend(f"  {item}" for item in items[:limit])
        return "\n".join(lines) or "nothing found"


def _by_request(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(str(row["request_id"]), []).append(row)
    return found


def account(
    journal: Journal,
    casts: Iterable[Op],
    calls: Iterable[CallOutcome] = (),
    *,
    expect_success: bool = True,
) -> Findings:
    """Lost, duplicated, stuck (and, with ``expect_success``, failed) work."""
    findings = Findings()
    casts, calls = list(casts), list(calls)
    rows = journal.operations()
    by_request = _by_request(rows)
    for op in casts:
        entries = by_request.get(op.request_id, [])
        if not any(e["state"] in FINISHED for e in entries):
            findings.lost.append(f"{op.method} {op.request_id}: {entries or 'never'}")
        if expect_success:
            findings.failed.extend(
                f"{op.method} {op.request_id}: {e['state']}: {e['error']}"
                for e in entries
                if e["state"] in ("failed", "rolled_back")
            )
    for outcome in calls:
        entries = by_request.get(outcome.op.request_id, [])
        if outcome.result == "ok" and not any(e["state"] == "done" for e in entries):
            findings.lost.append(
                f"{outcome.op.method} {outcome.op.request_id} answered ok: "
                f"{entries or 'never journaled'}"
            )
    ours = {op.request_id for op in casts} | {c.op.request_id for c in calls}
    counts = Counter(str(r["request_id"]) for r in rows if r["request_id"] in ours)
    findings.duplicated.extend(
        f"{rid}: {count} journal entries" for rid, count in counts.items() if count > 1
    )
    findings.stuck.extend(
        f"journal {r['seq']} {r['action']} {r['resource_id']}: {r['state']}"
        for r in rows
        if r["state"] not in FINISHED
    )
    for kind, records in (
        ("volume", journal.volumes()),
        ("snapshot", journal.snapshots()),
    ):
        findings.stuck.extend(
            f"{kind} {rid}: {rec['status']}"
            for rid, rec in records.items()
            if rec["status"] in TRANSITIONAL
        )
    return findings


def wait_quiet(
    journal: Journal,
    casts: Iterable[Op],
    timeout: float = 60,
    settle: float = 0.5,
) -> bool:
    """Wait until every cast has a finished journal entry, nothing is
    unfinished and no object is transitional, for ``settle`` seconds."""
    wanted = {op.request_id for op in casts}
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        try:
            findings = account(journal, [], expect_success=False)
            rows = journal.operations()
        except sa.exc.OperationalError:
            rows, findings = [], Findings(stuck=["database not readable yet"])
        finished = {str(r["request_id"]) for r in rows if r["state"] in FINISHED}
        if wanted <= finished and not findings.stuck:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return True
        else:
            quiet_since = None
        time.sleep(0.1)
    return False


# -- disk ------------------------------------------------------------------


def nbd_servers(root: pathlib.Path) -> dict[int, str]:
    """Live qemu-nbd processes whose pid file is under ``root``: pid ->
    the volume id they serve."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = pathlib.Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = pathlib.Path(f"/proc/{entry}/stat").read_text(errors="replace")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        if not args or os.path.basename(args[0]) != "qemu-nbd":
            continue
        if stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"]):
            continue
        for arg in args:
            match = _PID_FILE.fullmatch(arg)
            if match and arg.startswith(f"--pid-file={root}"):
                found[int(entry)] = match.group(1)
    return found


def _file_size(path: pathlib.Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _check_volume_files(
    pool: pathlib.Path, volumes: dict[str, dict[str, Any]]
) -> list[str]:
    problems: list[str] = []
    for vid, rec in volumes.items():
        size = _file_size(pool / f"volume-{vid}")
        status = rec["status"]
        if size is None:
            if status in ("available", "in-use", "error_extending"):
                problems.append(f"volume {vid} is {status} but has no file")
        elif status != "error" and size != rec["size"] * GiB:
            problems.append(
                f"volume {vid} ({status}) is {rec['size']} GiB but its file has "
                f"{size} bytes"
            )
    for name in os.listdir(pool):
        if name in (".snapshots", ".tmp"):
            continue
        match = _VOLUME.fullmatch(name)
        if not match or match.group(1) not in volumes:
            problems.append(f"orphan file {pool / name}")
    return problems


def _check_snapshot_files(
    pool: pathlib.Path, snapshots: dict[str, dict[str, Any]]
) -> list[str]:
    problems: list[str] = []
    for sid, rec in snapshots.items():
        path = pool / ".snapshots" / f"volume-{rec['volume_id']}" / f"snapshot-{sid}"
        size = _file_size(path)
        if size is None:
            if rec["status"] == "available":
                problems.append(f"snapshot {sid} is available but has no file")
        elif rec["status"] != "error" and size != rec["size"] * GiB:
            problems.append(
                f"snapshot {sid} ({rec['status']}) of volume {rec['volume_id']} "
                f"records {rec['size']} GiB but its file has {size} bytes"
            )
    top = pool / ".snapshots"
    for sub in sorted(top.iterdir()) if top.is_dir() else []:
        vmatch = _VOLUME.fullmatch(sub.name)
        for name in os.listdir(sub) if sub.is_dir() else ["(not a directory)"]:
            smatch = _SNAPSHOT.fullmatch(name)
            owner = snapshots.get(smatch.group(1)) if smatch else None
            if owner is None or not vmatch or owner["volume_id"] != vmatch.group(1):
                problems.append(f"orphan file {sub / name}")
    return problems


def _check_exports(
    state_dir: pathlib.Path,
    volumes: dict[str, dict[str, Any]],
    attachments: list[dict[str, Any]],
) -> list[str]:
    problems: list[str] = []
    attached = {a["volume_id"] for a in attachments}
    servers = nbd_servers(state_dir)
    served = set(servers.values())
    problems.extend(
        f"qemu-nbd {pid} serves volume {vid} without an attachment record"
        for pid, vid in sorted(servers.items())
        if vid not in attached
    )
    for att in attachments:
        vid = att["volume_id"]
        status = volumes.get(vid, {}).get("status")
        if status != "in-use":
            problems.append(f"volume {vid} has an attachment but is {status}")
        if vid not in served:
            problems.append(f"volume {vid} is attached but no qemu-nbd serves it")
    nbd_dir = state_dir / "nbd"
    for name in sorted(os.listdir(nbd_dir)) if nbd_dir.is_dir() else []:
        match = _VOLUME.match(name)
        if name.endswith(".json") and (not match or match.group(1) not in attached):
            problems.append(f"export record {name} without an attachment")
    return problems


def check_disk(
    journal: Journal, pool: pathlib.Path, state_dir: pathlib.Path
) -> list[str]:
    """Records against files, temp files and NBD servers."""
    volumes, snapshots = journal.volumes(), journal.snapshots()
    problems = _check_volume_files(pool, volumes)
    problems += _check_snapshot_files(pool, snapshots)
    tmp = pool / ".tmp"
    problems.extend(
        f"leftover temp file {tmp / name}"
        for name in (sorted(os.listdir(tmp)) if tmp.is_dir() else [])
    )
    problems += _check_exports(state_dir, volumes, journal.attachments())
    return problems


def check_model(journal: Journal, model: Model) -> list[str]:
    """Records against what the load must have left: every volume and
    snapshot the model holds, with its size and status, and nothing else."""
    problems: list[str] = []
    volumes, snapshots = journal.volumes(), journal.snapshots()
    for vid, state in model.volumes.items():
        rec = volumes.get(vid)
        want = model.status(vid)
        if rec is None:
            problems.append(f"volume {vid} is missing (want {want}, {state.size} GiB)")
        elif (rec["status"], rec["size"]) != (want, state.size):
            problems.append(
                f"volume {vid} is {rec['status']}, {rec['size']} GiB; want "
                f"{want}, {state.size} GiB ({rec['error']})"
            )
    problems.extend(
        f"volume {vid} should be gone but is {rec['status']}"
        for vid, rec in volumes.items()
        if vid not in model.volumes
    )
    for sid, (vid, size) in model.snapshots.items():
        rec = snapshots.get(sid)
        if rec is None:
            problems.append(f"snapshot {sid} of volume {vid} is missing")
        elif rec["status"] != "available":
            problems.append(f"snapshot {sid} is {rec['status']}: {rec['error']}")
        elif rec["size"] != size:
            problems.append(
                f"snapshot {sid} of volume {vid} records {rec['size']} GiB; the "
                f"volume had {size} GiB when it was taken"
            )
    problems.extend(
        f"snapshot {sid} should be gone but is {rec['status']}"
        for sid, rec in snapshots.items()
        if sid not in model.snapshots
    )
    return problems
