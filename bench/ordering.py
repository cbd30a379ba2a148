"""Figure 4: what per-volume order costs: ``create_snapshot`` throughput
(fake driver, no latency) with the same number of operations spread over 1,
8, 64 and 1,000 volumes, against the 1,000-volume case measured in the same
repeat. Operations on one volume run one after another, so with few volumes
the figure is the worker's per-operation latency, not its throughput.
The worker is frozen (SIGSTOP) rather than stopped while its queue fills:
the fake driver keeps its volumes only in memory."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Callable
from typing import Any

from bench import report
from bench.create import fake_worker
from bench.rounds import Session, by_notifications, drain, session
from bench.summary import ratio, summary

__all__ = ["run"]

VOLUMES = (1, 8, 64, 1000)


def _setup(volumes: int, ids: list[str]) -> Callable[[Session], None]:
    def setup(s: Session) -> None:
        for _ in range(volumes):
            volume_id = str(uuid.uuid4())
            s.api.create_volume(s.volume(volume_id))
            ids.append(volume_id)
        s.counter.wait_count("volume.create.end", volumes, 300)

    return setup


def _send(ops: int, ids: list[str]) -> Callable[[Session], int]:
    def send(s: Session) -> int:
        for i in range(ops):
            snapshot = {"id": str(uuid.uuid4()), "volume_id": ids[i % len(ids)]}
            s.api.create_snapshot(s.host, snapshot)
        return ops

    return send


def run(
    tmp: pathlib.Path, ops: int, repeats: int, log: Callable[[str], None]
) -> dict[str, Any]:
    rates: dict[int, list[float]] = {n: [] for n in VOLUMES}
    for r in range(repeats):
        order = VOLUMES[r % len(VOLUMES) :] + VOLUMES[: r % len(VOLUMES)]
        for volumes in order:
            ids: list[str] = []
            with session(fake_worker(tmp, f"f4-r{r}-{volumes}")) as s:
                done = drain(
                    s,
                    _send(ops, ids),
                    by_notifications("snapshot.create"),
                    setup=_setup(volumes, ids),
                    # The fake driver forgets its volumes at a restart.
                    freeze=True,
                )
            rates[volumes].append(done.rate)
            log(f"fig 4 repeat {r}: {volumes} volumes: {done.rate:.0f}/s")
    found = {n: summary(v) for n, v in rates.items()}
    base = VOLUMES[-1]
    rows = [
        report.row(
            "4",
            f"create_snapshot throughput, {ops:,} ops over {n:,} volume(s)",
            found[n],
            "/s",
            vs=f"{base:,} volumes" if n != base else "",
            ratio=ratio(found[n], found[base]) if n != base else None,
        )
        for n in VOLUMES
    ]
    # The rows read best from many volumes to one.
    return {"ops": ops, "rates": found, "rows": rows[::-1]}
