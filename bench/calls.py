"""Figure 2: ``get_volume`` call round trip through volworker against the
same call to the bare oslo.messaging server, one caller, p50 and p99.

Both servers run at once; each repeat times a block of calls to one, then
to the other (alternating which goes first), with the same client.
"""

from __future__ import annotations

import contextlib
import pathlib
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench import report
from bench.bare_server import BareServer
from bench.create import fake_worker
from bench.rounds import Session, session
from bench.summary import percentile, ratio, summary

__all__ = ["run"]

TARGET = 1.5
WARMUP = 50


def _block(s: Session, volume_id: str, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        began = time.perf_counter()
        s.api.get_volume(s.host, volume_id)
        times.append(time.perf_counter() - began)
    return times


def run(
    tmp: pathlib.Path, calls: int, repeats: int, log: Callable[[str], None]
) -> dict[str, Any]:
    p50: dict[str, list[float]] = {"volworker": [], "bare": []}
    p99: dict[str, list[float]] = {"volworker": [], "bare": []}
    with contextlib.ExitStack() as stack:
        sessions = {
            "volworker": stack.enter_context(session(fake_worker(tmp, "f2-worker"))),
            "bare": stack.enter_context(session(BareServer(tmp, name="f2-bare"))),
        }
        worker = sessions["volworker"]
        volume_id = str(uuid.uuid4())
        worker.api.create_volume(worker.volume(volume_id))
        worker.counter.wait_count("volume.create.end", 1, 60)
        for s in sessions.values():
            _block(s, volume_id, WARMUP)
        for r in range(repeats):
            order = ["volworker", "bare"] if r % 2 == 0 else ["bare", "volworker"]
            for name in order:
                times = _block(sessions[name], volume_id, calls)
                p50[name].append(percentile(times, 50) * 1e3)
                p99[name].append(percentile(times, 99) * 1e3)
                log(f"fig 2 repeat {r}: {name}: p50 {p50[name][-1]:.2f} ms")
    rows = []
    for label, values in (("p50", p50), ("p99", p99)):
        mine, base = summary(values["volworker"]), summary(values["bare"])
        vs = ratio(mine, base)
        target = {"target": f"≤ {TARGET}", "met": vs["of_medians"] <= TARGET}
        rows += [
            report.row(
                "2",
                f"get_volume call, {label} of {calls:,}: volworker",
                mine,
                "ms",
                vs="bare oslo call",
                ratio=vs,
                **(target if label == "p50" else {}),
            ),
            report.row("2", f"… {label}: bare oslo call", base, "ms"),
        ]
    return {"calls": calls, "p50_ms": p50, "p99_ms": p99, "rows": rows}
