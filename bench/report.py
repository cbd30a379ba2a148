"""The results as one markdown table: a row per measurement, with its
baseline and the ratio to it."""

from __future__ import annotations

from typing import Any

__all__ = ["markdown", "merged", "row", "table"]

Row = dict[str, Any]

_FORMATS = {
    "/s": "{:,.0f}",
    "ms": "{:.2f}",
    "s": "{:.3f}",
    "MiB": "{:.1f}",
    "B": "{:,.0f}",
    "x": "{:.2f}",
    "casts": "{:,.0f}",
}


def row(
    fig: str,
    what: str,
    value: dict[str, Any],
    unit: str,
    *,
    vs: str = "",
    ratio: dict[str, Any] | None = None,
    target: str = "",
    met: bool | None = None,
) -> Row:
    """One measurement (a summary of repeats) and, if any, its ratio to
    ``vs`` measured in the same run."""
    return {
        "fig": fig,
        "what": what,
        "value": value,
        "unit": unit,
        "vs": vs,
        "ratio": ratio,
        "target": target,
        "met": met,
    }


def _number(value: float, unit: str) -> str:
    return _FORMATS.get(unit, "{:.3g}").format(value)


def _value(r: Row) -> str:
    v, unit = r["value"], r["unit"]
    if v["min"] == v["max"]:
        return f"{_number(v['median'], unit)} {unit}"
    parts = (_number(v[k], unit) for k in ("min", "median", "max"))
    return f"{' / '.join(parts)} {unit}"


def _ratio(r: Row) -> str:
    ratio = r["ratio"]
    if not ratio:
        return ""
    text = f"**{ratio['of_medians']:.2f}**"
    if "min" in ratio and ratio["min"] != ratio["max"]:
        text += f" ({ratio['min']:.2f} to {ratio['max']:.2f})"
    return text


def _target(r: Row) -> str:
    if not r["target"]:
        return ""
    mark = {True: "met", False: "**missed**", None: ""}[r["met"]]
    return f"{r['target']} {mark}".strip()


def table(rows: list[Row]) -> str:
    lines = [
        "| fig | measurement | min / median / max | vs | ratio (per-repeat range) "
        "| target |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['fig']} | {r['what']} | {_value(r)} | {r['vs']} "
            f"| {_ratio(r)} | {_target(r)} |"
        )
    return "\n".join(lines)


def machine_line(result: dict[str, Any]) -> str:
    m = result["machine"]
    return (
        f"{m['nproc']} x {m['cpu']}, Linux {m['kernel']}, Python {m['python']}, "
        f"oslo.messaging {m['oslo.messaging']}, kombu {m['kombu']}, "
        f"RabbitMQ {m['rabbitmq']}, volworker {m['commit']}; load average "
        f"{' '.join(map(str, result['load']['start']))} at start, "
        f"{' '.join(map(str, result['load']['end']))} at end; "
        f"{result['mode']} run, {result['repeats']} repeats"
    )


def markdown(result: dict[str, Any]) -> str:
    parts = [
        f"Machine: {machine_line(result)}.",
        "",
        table(result["rows"]),
    ]
    failed = result.get("failed") or []
    if failed:
        parts += ["", f"**Failed (see the run's log):** figure {', '.join(failed)}."]
    notes = result.get("notes") or []
    if notes:
        parts += ["", *(f"- {note}" for note in notes)]
    return "\n".join(parts) + "\n"


#: how a note of figures measured again (merged) begins
AGAIN = "Figure(s) "


def merged(
    base: dict[str, Any],
    rerun: dict[str, Any],
    why: str = "after failing in the run above",
) -> dict[str, Any]:
    """``base`` with the figures ``rerun`` measured put in place of its own
    (a figure that failed in a full run, or whose code changed, measured
    again): their rows where theirs were, and a note of when, on what commit
    and ``why`` they ran."""
    figures = list(rerun["figures"])
    order = {
        fig: i for i, fig in enumerate(sorted({*base["figures"], *figures}, key=int))
    }
    result = dict(base)
    result["figures"] = {**base["figures"], **rerun["figures"]}
    kept = [r for r in base["rows"] if r["fig"] not in figures]
    result["rows"] = sorted(kept + rerun["rows"], key=lambda r: order[r["fig"]])
    result["failed"] = [f for f in base["failed"] if f not in figures]
    if figures:
        result["notes"] = [
            *base["notes"],
            f"{AGAIN}{', '.join(figures)} measured again on "
            f"{rerun['started'][:10]} (volworker {rerun['machine']['commit']}) "
            f"in a run of its own of {rerun['seconds']:.0f} s, {why}.",
        ]
    return result
