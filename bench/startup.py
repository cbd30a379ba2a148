"""Figure 3: seconds from process start to ``READY=1``, volworker with the
fake and the file driver (a first start, which makes its database, and a
restart), against the bare oslo.messaging server started the same way."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

from bench import report
from bench.bare_server import BareServer
from bench.create import fake_worker
from bench.rounds import session
from bench.summary import ratio, summary
from volworker.testing.worker import Worker

__all__ = ["run"]

TARGET = 1.0
BARE = "bare oslo server"


def file_worker(tmp: pathlib.Path, name: str) -> Worker:
    pool = tmp / name / "pool"
    pool.mkdir(parents=True)
    return Worker(
        tmp, {"file": {"volume_driver": "file", "file_pools": f"p:{pool}"}}, name=name
    )


def _bare(tmp: pathlib.Path, name: str) -> Worker:
    return BareServer(tmp, name=name)


VARIANTS: dict[str, Callable[[pathlib.Path, str], Worker]] = {
    "volworker, fake driver": fake_worker,
    "volworker, file driver": file_worker,
    BARE: _bare,
}


def run(tmp: pathlib.Path, repeats: int, log: Callable[[str], None]) -> dict[str, Any]:
    times: dict[str, list[float]] = {}
    for r in range(repeats):
        names = list(VARIANTS)
        for name in names[r % len(names) :] + names[: r % len(names)]:
            server = VARIANTS[name](tmp, f"f3-r{r}-{name.split()[-2]}")
            with session(server, start=False) as s:
                first = s.start()
                again = s.restart()
            times.setdefault(f"{name}: first start", []).append(first)
            times.setdefault(f"{name}: restart", []).append(again)
            log(f"fig 3 repeat {r}: {name}: {first:.3f} s, restart {again:.3f} s")
    found = {name: summary(v) for name, v in times.items()}
    rows = []
    for name, value in found.items():
        if name.startswith(BARE):
            continue
        base = f"{BARE}: {name.rpartition(': ')[2]}"
        fake = "fake" in name
        rows.append(
            report.row(
                "3",
                f"start to READY=1: {name}",
                value,
                "s",
                vs=base,
                ratio=ratio(value, found[base]),
                target=f"< {TARGET} s" if fake else "",
                met=value["median"] < TARGET if fake else None,
            )
        )
    for name, value in found.items():
        if name.startswith(BARE):
            rows.append(report.row("3", f"… {name}", value, "s"))
    return {"seconds": found, "rows": rows}
