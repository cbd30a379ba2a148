"""Figure 10: a flood of casts, and the server's memory while it drains.

``casts`` creates wait in the server's queue (filled while it was stopped, as
in figure 1: one sending thread cannot outrun the worker, so this is the
flood at its worst, all of it there at once); then the server starts (fake
driver, default options) and drains them, timed by their
``volume.create.end`` notifications. Meanwhile its RSS and its queue's depth
are sampled every half second. volworker takes from the broker only what it
can journal and run soon, so the backlog stays on the broker and its RSS
near idle; the bare oslo.messaging server, in the same repeat, pulls the
whole backlog into memory. Every create must be done exactly once: as many
``.end`` notifications as casts, no more.
"""

from __future__ import annotations

import contextlib
import pathlib
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil

from bench import report
from bench.bare_server import BareServer
from bench.broker import queue_depth
from bench.create import fake_worker, send_creates
from bench.memory import MiB, quiet_rss
from bench.rounds import by_notifications, drain, session
from bench.summary import ratio, summary

__all__ = ["run"]

VOLWORKER = "volworker (fake)"
BARE = "bare oslo server + notifications"
SAMPLE = 0.5
#: after the last .end: how long to watch for a create done twice
SETTLE = 5.0


class _Sampler(threading.Thread):
    """A process's RSS and a queue's depth, every SAMPLE seconds."""

    def __init__(self, pid: int, queue: str) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.queue = queue
        self.rss: list[float] = []
        self.depth: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(SAMPLE):
            self.rss.append(self.process.memory_info().rss / MiB)
            self.depth.append(queue_depth(self.queue) or 0)


def _round(
    tmp: pathlib.Path, make: Callable[[pathlib.Path, str], Any], name: str, casts: int
) -> dict[str, float]:
    samplers: list[_Sampler] = []
    with session(make(tmp, name)) as s:
        idle = quiet_rss(s)

        @contextlib.contextmanager
        def watch(pid: int) -> Iterator[None]:
            sampler = _Sampler(pid, f"{s.server.topic}.{s.host}")
            samplers.append(sampler)
            sampler.start()
            try:
                yield
            finally:
                sampler.halt.set()
                sampler.join()

        done = drain(
            s,
            send_creates(casts),
            by_notifications("volume.create"),
            watch=watch,
            timeout=3600,
        )
        time.sleep(SETTLE)
        ended = s.counter.counts["volume.create.end"]
    (sampler,) = samplers
    return {
        "idle": idle,
        "peak": max(sampler.rss, default=idle),
        "waiting": float(statistics.mean(sampler.depth or [0])),
        "twice": float(ended - casts),
        "seconds": done.seconds,
    }


def run(
    tmp: pathlib.Path, casts: int, repeats: int, log: Callable[[str], None]
) -> dict[str, Any]:
    found: dict[str, dict[str, list[float]]] = {VOLWORKER: {}, BARE: {}}
    makers: dict[str, Callable[[pathlib.Path, str], Any]] = {
        VOLWORKER: fake_worker,
        BARE: lambda tmp, name: BareServer(tmp, name=name),
    }
    for r in range(repeats):
        for variant, make in makers.items():
            done = _round(tmp, make, f"f10-r{r}-{len(found[variant])}", casts)
            for key, value in done.items():
                found[variant].setdefault(key, []).append(value)
            log(
                f"fig 10 repeat {r}: {variant}: RSS idle {done['idle']:.1f}, peak "
                f"{done['peak']:.1f} MiB; {done['waiting']:.0f} on the broker on "
                f"average; {casts:,} done in {done['seconds']:.0f}s, "
                f"{done['twice']:.0f} twice"
            )
    s = {v: {k: summary(x) for k, x in parts.items()} for v, parts in found.items()}
    worker, bare = s[VOLWORKER], s[BARE]
    flood = f"a flood of {casts:,} casts"
    waiting = "… casts waiting on the broker, mean over the drain"
    seconds = "… seconds to drain"
    rows = []
    for n, (variant, found_) in enumerate(((VOLWORKER, worker), (BARE, bare))):
        what = f"RSS during {flood}: {variant}" if n == 0 else f"… {variant}"
        rows += [
            report.row(
                "10",
                f"{what}, peak",
                found_["peak"],
                "MiB",
                vs=f"{variant} idle",
                ratio=ratio(found_["peak"], found_["idle"]),
            ),
            report.row("10", f"… {variant}, idle", found_["idle"], "MiB"),
        ]
    rows += [
        report.row("10", f"{waiting}: {VOLWORKER}", worker["waiting"], "casts"),
        report.row("10", f"{waiting}: {BARE}", bare["waiting"], "casts"),
        report.row("10", f"{seconds}: {VOLWORKER}", worker["seconds"], "s"),
        report.row("10", f"{seconds}: {BARE}", bare["seconds"], "s"),
        report.row(
            "10",
            f"… creates done twice (a lost one never ends): {VOLWORKER}",
            worker["twice"],
            "casts",
        ),
    ]
    return {"casts": casts, "found": s, "rows": rows}
