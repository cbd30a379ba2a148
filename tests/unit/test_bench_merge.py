"""bench/run --merge: a figure measured again replaces its failed place in
a full run's results, and the results say so."""

from __future__ import annotations

from typing import Any

from bench import readme, report


def _row(fig: str, what: str) -> dict[str, Any]:
    return report.row(fig, what, {"min": 1.0, "median": 1.0, "max": 1.0}, "s")


def _run(
    started: str, commit: str, rows: list[dict[str, Any]], failed: list[str]
) -> dict[str, Any]:
    return {
        "started": started,
        "machine": {"commit": commit},
        "seconds": 60.0,
        "figures": {r["fig"]: {"rows": []} for r in rows},
        "rows": rows,
        "failed": failed,
        "notes": ["a note"],
    }


def test_a_figure_measured_again_takes_its_place() -> None:
    full = _run(
        "2026-11-26T02:28:39+00:00",
        "abc1234",
        [_row("5", "five"), _row("7", "seven"), _row("10", "ten")],
        ["6"],
    )
    again = _run("2026-11-26T03:10:00+00:00", "def5678", [_row("6", "six")], [])
    merged = report.merged(full, again)
    assert [r["what"] for r in merged["rows"]] == ["five", "six", "seven", "ten"]
    assert merged["failed"] == []
    assert merged["started"] == full["started"]
    assert merged["notes"][0] == "a note"
    assert (
        "Figure(s) 6 measured again on 2026-11-26 (volworker def5678)"
        in (merged["notes"][-1])
    )
    assert full["failed"] == ["6"], "the earlier results are not changed"


def test_the_readme_says_which_figures_were_measured_again_and_when() -> None:
    full = _run("2026-11-26T02:28:39+00:00", "abc1234", [_row("5", "five")], [])
    again = _run("2026-11-27T03:10:00+00:00", "def5678", [_row("5", "five")], [])
    machine = {
        "nproc": 2,
        "cpu": "x",
        "kernel": "k",
        "python": "3",
        "oslo.messaging": "o",
        "kombu": "k",
        "rabbitmq": "r",
        "commit": "abc1234",
    }
    block = readme.bench_block(
        {
            **report.merged(full, again, "after it changed"),
            "machine": machine,
            "load": {"start": [1], "end": [2]},
            "mode": "full",
            "repeats": 3,
        }
    )
    assert "- Figure(s) 5 measured again on 2026-11-27 (volworker def5678)" in block
    assert "a note" not in block
