"""The fault suite's results file: its closing line and counts, what the
kill rounds ran on, and the machine and date, for README.md's figures
(``scripts/readme-figures``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pathlib
from typing import Any

from bench import machine
from tests.faults.tally import Tally
from volworker.testing.listen import BROKER

__all__ = ["write"]


def _machine() -> dict[str, Any]:
    try:
        return machine.machine(BROKER)
    except Exception as exc:  # the broker may be the reason the suite failed
        return {"error": f"{type(exc).__name__}: {exc}"}


def write(
    path: pathlib.Path,
    *,
    passed: bool,
    line: str,
    total: Tally,
    tests: list[str],
    failed: list[str],
    seconds: float,
    kill_rounds: list[dict[str, Any]],
) -> pathlib.Path:
    """Write the results to ``path`` (JSON) and return it."""
    record = {
        "passed": passed,
        "line": line,
        "counts": dataclasses.asdict(total),
        "tests": len(tests),
        "failed": failed,
        "kill_rounds": kill_rounds,
        "seconds": round(seconds, 1),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return path
