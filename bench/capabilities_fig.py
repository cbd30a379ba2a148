"""Figure 6: capabilities with 1, 100 and 1,000 pools, by running
``bench/capabilities.py`` (its own baseline: a report with no pools) and
folding its JSON into the report."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from bench import report

__all__ = ["run"]

SCRIPT = pathlib.Path(__file__).with_name("capabilities.py")
BASE = "empty pools (baseline)"


def _ratio(this: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    return {"of_medians": this["median"] / base["median"]}


def _rows(results: dict[str, Any]) -> list[report.Row]:
    base = results[BASE]
    rows = []
    for label, r in results.items():
        if label == BASE:
            continue
        size = {k: float(r["bytes"]) for k in ("min", "median", "max")}
        rows.append(
            report.row(
                "6",
                f"capabilities, {label}: message size",
                size,
                "B",
                vs=f"no pools ({base['bytes']:,} B)",
                ratio={"of_medians": r["bytes"] / base["bytes"]},
            )
        )
        cast = {k: v * 1e3 for k, v in r["cast"].items()}
        rows.append(
            report.row(
                "6",
                f"… {label}: publish (fanout cast, broker confirm)",
                cast,
                "ms",
                vs="no pools",
                ratio=_ratio(r["cast"], base["cast"]),
            )
        )
        if "request" in r:
            one = results["1 pools"]["request"]
            rows.append(
                report.row(
                    "6",
                    f"… {label}: publish on request, until in the scheduler's queue",
                    {k: v * 1e3 for k, v in r["request"].items()},
                    "ms",
                    vs="1 pool",
                    ratio=_ratio(r["request"], one),
                )
            )
    return rows


def run(repeats: int, log: Callable[[str], None]) -> dict[str, Any]:
    if not SCRIPT.exists():
        log("fig 6: bench/capabilities.py is not there; skipped")
        return {"skipped": "bench/capabilities.py is not there", "rows": []}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--repeats", str(repeats)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=SCRIPT.parents[1],
    )
    if done.returncode != 0:
        log(f"fig 6: bench/capabilities.py failed:\n{done.stderr[-2000:]}")
        return {"failed": done.stderr[-2000:], "rows": []}
    table, _, document = done.stdout.partition("\n{")
    results = json.loads("{" + document)
    log("fig 6: bench/capabilities.py done")
    return {
        "table": table.strip(),
        "capabilities.py": results,
        "rows": _rows(results["results"]),
    }
