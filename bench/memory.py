"""Figure 8: volworker's resident memory (fake driver) idle after start,
after it created ``volumes`` volumes, and idle after a restart with those
volumes in its state store; against the bare oslo.messaging server idle,
in the same repeat."""

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
from bench.stats import ratio, summary

__all__ = ["run"]

SETTLE = 2.0
MiB = 1024**2


def _rss(s: Session) -> float:
    """RSS in MiB once the process has been left alone for a moment."""
    time.sleep(SETTLE)
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
    for r in range(repeats):
        with session(BareServer(tmp, name=f"f8-r{r}-bare")) as s:
            note(bare, _rss(s))
        with session(fake_worker(tmp, f"f8-r{r}-worker")) as s:
            note(idle, _rss(s))
            _populate(s, volumes)
            note(after, _rss(s))
            s.restart()
            note(full, _rss(s))
        log(
            f"fig 8 repeat {r}: "
            + ", ".join(f"{k} {v[-1]:.1f}" for k, v in rss.items())
        )
    found = {k: summary(v) for k, v in rss.items()}
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
    ]
    return {"volumes": volumes, "rss_mib": found, "rows": rows}
