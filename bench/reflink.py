"""Figure 7: the file driver on XFS with reflink, through a running worker:
``create_volume`` (blank), ``create_snapshot`` and ``create_volume`` from a
source volume (clone) of a data-filled 1 GiB and 10 GiB volume, each timed
from the cast to its ``.end`` notification. Flat with size means the
larger / smaller ratio stays near 1; the baseline is a full copy of the same
file (read, write, fsync), which grows with size. Needs root (loop mount).

``bench/snapshot_clone.py`` measures snapshot and clone at the driver level;
this adds create, and the worker around the driver.
"""

from __future__ import annotations

import functools
import os
import pathlib
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench import report
from bench.rounds import Session, session
from bench.snapshot_clone import GiB, _fill, _full_copy
from bench.summary import ratio, summary
from tests.contract.xfs import mounted_xfs
from volworker.testing.worker import Worker

__all__ = ["run"]

OPS = ("create", "snapshot", "clone")
#: "flat with size", read as: the larger size takes at most this much longer
FLAT = 1.5


def _timed(s: Session, kind: str, cast: Callable[[], None]) -> float:
    """Seconds from the cast to the arrival of its ``<kind>.end``."""
    seen = s.counter.counts[f"{kind}.end"]
    began = time.monotonic()
    cast()
    s.counter.wait_count(f"{kind}.end", seen + 1, 600)
    return s.counter.arrived - began


def _volume(s: Session, size: int, **fields: Any) -> tuple[dict[str, Any], float]:
    volume = s.volume(str(uuid.uuid4()), size, **fields)
    return volume, _timed(s, "volume.create", lambda: s.api.create_volume(volume))


def _measure(
    s: Session, pool: pathlib.Path, size: int, repeats: int, copies: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {op: [] for op in (*OPS, "full copy")}
    volumes, snapshots = [], []
    for _ in range(repeats):
        volume, seconds = _volume(s, size)
        volumes.append(volume)
        times["create"].append(seconds)
    source = volumes[0]
    path = pool / f"volume-{source['id']}"
    _fill(str(path), size * GiB)
    for _ in range(repeats):
        snap = {"id": str(uuid.uuid4()), "volume_id": source["id"]}
        snapshots.append(snap)
        cast = functools.partial(s.api.create_snapshot, s.host, snap)
        times["snapshot"].append(_timed(s, "snapshot.create", cast))
    for _ in range(repeats):
        clone, seconds = _volume(s, size, source_volid=source["id"])
        volumes.append(clone)
        times["clone"].append(seconds)
    for i in range(copies):
        target = pool / f"copy-{i}"
        began = time.monotonic()
        _full_copy(str(path), str(target))
        times["full copy"].append(time.monotonic() - began)
        os.unlink(target)
    for snap in snapshots:
        cast = functools.partial(s.api.delete_snapshot, s.host, snap)
        _timed(s, "snapshot.delete", cast)
    for volume in volumes:
        _timed(s, "volume.delete", functools.partial(s.api.delete_volume, volume))
    return times


def _rows(sizes: list[int], s: dict[int, dict[str, Any]]) -> list[report.Row]:
    small, large = sizes[0], sizes[-1]
    rows = []
    for op in (*OPS, "full copy"):
        what = "blank" if op == "create" else "data-filled"
        vs = ratio(s[large][op], s[small][op])
        flat = op != "full copy"
        rows += [
            report.row(
                "7",
                f"file driver on XFS reflink: {op}, {small} GiB {what}",
                s[small][op],
                "s",
            ),
            report.row(
                "7",
                f"… {op}, {large} GiB {what}",
                s[large][op],
                "s",
                vs=f"{op}, {small} GiB",
                ratio=vs,
                target=f"≤ {FLAT} (flat)" if flat else "",
                met=vs["of_medians"] <= FLAT if flat else None,
            ),
        ]
    return rows


def _run(
    base: pathlib.Path, tmp: pathlib.Path, sizes: list[int], repeats: int, copies: int
) -> dict[int, dict[str, Any]]:
    results: dict[int, dict[str, Any]] = {}
    with mounted_xfs(base, f"{2 * sum(sizes) + 8}G") as mount:
        pool = mount / "pool"
        pool.mkdir()
        backend = {"volume_driver": "file", "file_pools": f"xfs:{pool}"}
        with session(Worker(tmp, {"file": backend}, name="f7-worker")) as s:
            # A first pass of every operation, not counted: the first
            # request a process serves pays for lazy imports and caches.
            _measure(s, pool, 1, 1, 0)
            for size in sizes:
                times = _measure(s, pool, size, repeats, copies)
                results[size] = {op: summary(v) for op, v in times.items()}
    return results


def run(
    tmp: pathlib.Path,
    sizes: list[int],
    repeats: int,
    copies: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    if os.geteuid() != 0:
        log("fig 7: needs root for its XFS loop mount; skipped")
        return {"skipped": "needs root", "rows": []}
    with tempfile.TemporaryDirectory(dir=tmp) as base:
        results = _run(pathlib.Path(base), tmp, sizes, repeats, copies)
    for size, ops in results.items():
        medians = ", ".join(f"{op} {v['median']:.3f} s" for op, v in ops.items())
        log(f"fig 7 {size} GiB: {medians}")
    return {"sizes": sizes, "seconds": results, "rows": _rows(sizes, results)}
