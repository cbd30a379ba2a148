"""Figure 8: volworker's resident memory (fake driver) idle after start,
after it created ``volumes`` volumes, and idle after a restart with those
volumes in its state store; against the bare oslo.messaging server idle,
in the same repeat. "Idle" is once the process has gone quiet (under 5 % of
a core over half a second); after the restart the report also gives the
time to READY=1 and how long the worker stayed busy after it."""

from __future__ import annotations

import pathlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import psutil

from bench import report
from bench.bare_server import BareServer
from bench.create import fake_worker
from bench.rounds import Session, session
from bench.summary import ratio, summary

__all__ = ["MiB", "quiet_rss", "run"]

MiB = 1024**2
#: quiet: less than this share of a core over one tick
QUIET, TICK = 0.05, 0.5


def _quiet(s: Session, timeout: float = 120) -> float:
    """Wait until the process is idle; seconds it stayed busy."""
    assert s.server.proc is not None
    proc = psutil.Process(s.server.proc.pid)
    began = time.monotonic()
    before = sum(proc.cpu_times()[:2])
    while time.monotonic() - began < timeout:
        time.sleep(TICK)
        now = sum(proc.cpu_times()[:2])
        if now - before < QUIET * TICK:
            break
        before = now
    return time.monotonic() - began - TICK


def quiet_rss(s: Session) -> float:
    """RSS in MiB once the process has gone quiet."""
    _quiet(s)
    assert s.server.proc is not None
    return float(psutil.Process(s.server.proc.pid).memory_info().rss / MiB)


def _populate(s: Session, volumes: int) -> None:
    for _ in range(volumes):
        s.api.create_volume(s.volume(str(uuid.uuid4())))
    s.counter.wait_count("volume.create.end", volumes, 600)


def run(
    tmp: pathlib.Path, volumes: int, repeats: int, log: Callable[[str], None]
) -> dict[str, Any]:
    rss: dict[str, list[float]] = {}

    def note(key: str, value: float) -> None:
        rss.setdefault(key, []).append(value)

    idle, full = "idle", f"idle after restart, {volumes:,} volumes in store"
    after, bare = f"after creating {volumes:,} volumes", "bare oslo server idle"
    ready = f"restart to READY=1 with {volumes:,} volumes in store"
    busy = f"busy after READY=1 with {volumes:,} volumes in store"
    for r in range(repeats):
        with session(BareServer(tmp, name=f"f8-r{r}-bare")) as s:
            note(bare, quiet_rss(s))
        with session(fake_worker(tmp, f"f8-r{r}-worker")) as s:
            note(idle, quiet_rss(s))
            _populate(s, volumes)
            note(after, quiet_rss(s))
            s.stop()
            note(ready, s.start())
            note(busy, _quiet(s))
            note(full, quiet_rss(s))
        log(
            f"fig 8 repeat {r}: "
            + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rss.items())
        )
    found = {k: summary(v) for k, v in rss.items()}
    times = {k: found.pop(k) for k in (ready, busy)}
    rows = [
        report.row(
            "8",
            f"RSS, volworker (fake) {idle}",
            found[idle],
            "MiB",
            vs=bare,
            ratio=ratio(found[idle], found[bare]),
        ),
        report.row(
            "8",
            f"… volworker {after}",
            found[after],
            "MiB",
            vs="volworker idle",
            ratio=ratio(found[after], found[idle]),
        ),
        report.row(
            "8",
            f"… volworker {full}",
            found[full],
            "MiB",
            vs="volworker idle",
            ratio=ratio(found[full], found[idle]),
        ),
        report.row("8", f"… {bare}", found[bare], "MiB"),
        report.row("8", f"… volworker {ready}", times[ready], "s"),
        report.row("8", f"… volworker {busy} (CPU above 5%)", times[busy], "s"),
    ]
    return {"volumes": volumes, "rss_mib": found, "seconds": times, "rows": rows}
