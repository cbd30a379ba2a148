"""Figure 11: the rbd driver through a running worker, against the same
librbd calls made directly, on a throwaway single-node Ceph (scripts/ceph,
memstore) started for the figure (or ``$VOLWORKER_BENCH_CEPH_CONF``).

- latency of one ``create_volume`` (blank), ``create_snapshot`` and
  ``create_volume`` from a source volume (a clone), from the cast to its
  ``.end`` notification, against ``rbd create``, ``snap create`` and
  ``snap create`` + ``snap protect`` + ``clone`` done in this process;
- throughput of creates and clones with many in flight, against the same
  librbd calls on as many threads as the worker runs operations at once;
- clone time of a data-filled 10 GiB volume against a 1 GiB one (flat with
  size means a ratio near 1). The volumes hold one 4 MiB object of data in
  every 64 MiB, so that memstore keeps them in memory.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
import pathlib
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from bench import report
from bench.reflink import _timed, _volume
from bench.rounds import Session, session
from bench.summary import ratio, summary
from tests.ceph import CephCluster, started
from tests.contract.harness_rbd import purge
from volworker.testing.worker import Worker

__all__ = ["run"]

GiB = 1024**3
MiB = 1024**2
EXISTING = "VOLWORKER_BENCH_CEPH_CONF"
#: operations the worker runs at once, and threads of the direct baseline
CONCURRENCY = 16
#: "flat with size", read as: the larger size takes at most this much longer
FLAT = 1.5
Log = Callable[[str], None]


@contextlib.contextmanager
def _cluster(tmp: pathlib.Path) -> Iterator[CephCluster]:
    given = os.environ.get(EXISTING)
    if given:
        yield CephCluster(pathlib.Path(given))
        return
    with tempfile.TemporaryDirectory(dir=tmp) as base, started(pathlib.Path(base)) as c:
        yield c


def _fill(ioctx: Any, name: str, size: int) -> None:
    import rbd

    with rbd.Image(ioctx, name) as image:
        for offset in range(0, size, 64 * MiB):
            image.write(b"\xa5" * (4 * MiB), offset)


class Direct:
    """The same work as the driver, as bare librbd calls."""

    def __init__(self, ioctx: Any) -> None:
        import rbd

        self.rbd, self.ioctx, self.api = rbd, ioctx, rbd.RBD()

    def create(self, _: int = 0) -> str:
        name = f"direct-{uuid.uuid4()}"
        self.api.create(self.ioctx, name, GiB, old_format=False)
        return name

    def snapshot(self, name: str) -> None:
        with self.rbd.Image(self.ioctx, name) as image:
            image.create_snap(f"s-{uuid.uuid4()}")

    def clone(self, source: str) -> None:
        snap = f"c-{uuid.uuid4()}"
        with self.rbd.Image(self.ioctx, source) as image:
            image.create_snap(snap)
            image.protect_snap(snap)
        self.api.clone(self.ioctx, source, snap, self.ioctx, f"clone-{uuid.uuid4()}")


def _each(action: Callable[[], Any], count: int) -> float:
    """Median seconds of ``count`` runs of ``action``."""
    times = []
    for _ in range(count):
        began = time.monotonic()
        action()
        times.append(time.monotonic() - began)
    return sorted(times)[len(times) // 2]


def _latency(s: Session, direct: Direct, count: int) -> dict[str, tuple[float, float]]:
    """Median seconds of each operation: (through the worker, direct)."""
    source, _ = _volume(s, 1)
    base = direct.create()
    snap = functools.partial(_snapshot, s, source["id"])
    return {
        "create": (_each(lambda: _volume(s, 1), count), _each(direct.create, count)),
        "snapshot": (_each(snap, count), _each(lambda: direct.snapshot(base), count)),
        "clone": (
            _each(lambda: _volume(s, 1, source_volid=source["id"]), count),
            _each(lambda: direct.clone(base), count),
        ),
    }


def _snapshot(s: Session, volume_id: str) -> float:
    snap = {"id": str(uuid.uuid4()), "volume_id": volume_id}
    return _timed(s, "snapshot.create", lambda: s.api.create_snapshot(s.host, snap))


def _worker_rate(s: Session, count: int, **fields: Any) -> float:
    """Creates per second with ``count`` cast at once."""
    seen = s.counter.counts["volume.create.end"]
    began = time.monotonic()
    for _ in range(count):
        s.api.create_volume(s.volume(str(uuid.uuid4()), 1, **fields))
    s.counter.wait_count("volume.create.end", seen + count, 600)
    return count / (s.counter.arrived - began)


def _direct_rate(action: Callable[[int], Any], count: int) -> float:
    began = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(action, range(count)))
    return count / (time.monotonic() - began)


def _throughput(
    s: Session, direct: Direct, count: int
) -> dict[str, tuple[float, float]]:
    source, _ = _volume(s, 1)
    base = direct.create()
    return {
        "create": (_worker_rate(s, count), _direct_rate(direct.create, count)),
        "clone": (
            _worker_rate(s, count, source_volid=source["id"]),
            _direct_rate(lambda _: direct.clone(base), count),
        ),
    }


def _clone_by_size(s: Session, ioctx: Any, size: int, count: int) -> float:
    source, _ = _volume(s, size)
    _fill(ioctx, f"volume-{source['id']}", size * GiB)
    return _each(lambda: _volume(s, size, source_volid=source["id"]), count)


def _repeat(s: Session, ceph: CephCluster, sizes: dict[str, Any]) -> dict[str, float]:
    with ceph.admin() as ioctx:
        direct = Direct(ioctx)
        found: dict[str, float] = {}
        for op, (mine, theirs) in _latency(s, direct, sizes["each"]).items():
            found[f"{op} latency"], found[f"{op} latency direct"] = mine, theirs
        for op, (mine, theirs) in _throughput(s, direct, sizes["burst"]).items():
            found[f"{op} rate"], found[f"{op} rate direct"] = mine, theirs
        for gib in sizes["clone_sizes"]:
            found[f"clone {gib} GiB"] = _clone_by_size(s, ioctx, gib, sizes["each"])
        purge(ioctx)
    return found


def _rows(results: dict[str, dict[str, Any]], sizes: list[int]) -> list[report.Row]:
    rows = []
    for op, what in (
        ("create", "blank 1 GiB"),
        ("snapshot", "of a 1 GiB volume"),
        ("clone", "of a 1 GiB volume"),
    ):
        mine, theirs = results[f"{op} latency"], results[f"{op} latency direct"]
        rows.append(
            report.row(
                "11",
                f"rbd {op} ({what}), cast to .end",
                {k: v * 1e3 for k, v in mine.items() if k != "samples"},
                "ms",
                vs=f"direct librbd {op}",
                ratio=ratio(mine, theirs),
            )
        )
    for op in ("create", "clone"):
        mine, theirs = results[f"{op} rate"], results[f"{op} rate direct"]
        rows.append(
            report.row(
                "11",
                f"rbd {op} throughput, many in flight",
                mine,
                "/s",
                vs=f"direct librbd on {CONCURRENCY} threads",
                ratio=ratio(mine, theirs),
            )
        )
    small, large = results[f"clone {sizes[0]} GiB"], results[f"clone {sizes[-1]} GiB"]
    vs = ratio(large, small)
    rows.append(
        report.row(
            "11",
            f"rbd clone of a data-filled {sizes[-1]} GiB volume",
            {k: v * 1e3 for k, v in large.items() if k != "samples"},
            "ms",
            vs=f"{sizes[0]} GiB",
            ratio=vs,
            target=f"≤ {FLAT} (flat)",
            met=vs["of_medians"] <= FLAT,
        )
    )
    return rows


def run(
    tmp: pathlib.Path, sizes: dict[str, Any], repeats: int, log: Log
) -> dict[str, Any]:
    samples: dict[str, list[float]] = {}
    with _cluster(tmp) as ceph:
        backend = ceph.backend(rados_connection_retries=3)
        worker = Worker(
            tmp,
            {"ceph": backend},
            name="f9-worker",
            defaults={"max_concurrent_operations": CONCURRENCY},
        )
        with session(worker) as s:
            _repeat(s, ceph, {**sizes, "clone_sizes": sizes["clone_sizes"][:1]})
            for number in range(repeats):
                for key, value in _repeat(s, ceph, sizes).items():
                    samples.setdefault(key, []).append(value)
                log(f"fig 11 repeat {number + 1}: {samples}")
    results = {key: summary(values) for key, values in samples.items()}
    return {"seconds": results, "rows": _rows(results, sizes["clone_sizes"])}
