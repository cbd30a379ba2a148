"""Figure 5: does throughput scale with ``max_concurrent_operations``?

The fake driver takes 50 ms per ``create_volume``; with 8, 32 and 64
operations allowed at once the ideal is 8, 32 and 64 per 50 ms (160, 640
and 1,280 creates/s). Each is measured as a drain round of ``per_slot``
creates per allowed operation, and reported against that ideal and against
the 8-operation case of the same repeat (ideal ratios 4 and 8)."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

from bench import report
from bench.create import send_creates
from bench.rounds import by_notifications, drain, session
from bench.summary import ratio, summary
from volworker.testing.worker import Worker

__all__ = ["run"]

LATENCY = 0.05
LIMITS = (8, 32, 64)
#: "near-linear", read as: at least this share of the ideal at every limit
NEAR = 0.8


def _worker(tmp: pathlib.Path, name: str, limit: int) -> Worker:
    backend = {
        "volume_driver": "fake",
        "fake_method_latency": f"create_volume:{LATENCY}",
    }
    return Worker(
        tmp,
        {"fake": backend},
        name=name,
        defaults={"max_concurrent_operations": limit},
    )


def run(
    tmp: pathlib.Path, per_slot: int, repeats: int, log: Callable[[str], None]
) -> dict[str, Any]:
    rates: dict[int, list[float]] = {n: [] for n in LIMITS}
    for r in range(repeats):
        for limit in LIMITS[r % len(LIMITS) :] + LIMITS[: r % len(LIMITS)]:
            with session(_worker(tmp, f"f5-r{r}-{limit}", limit)) as s:
                done = drain(
                    s,
                    send_creates(per_slot * limit),
                    by_notifications("volume.create"),
                )
            rates[limit].append(done.rate)
            log(f"fig 5 repeat {r}: {limit} at once: {done.rate:.0f}/s")
    found = {n: summary(v) for n, v in rates.items()}
    rows = []
    for limit in LIMITS:
        ideal = summary([limit / LATENCY] * len(found[limit]["samples"]))
        vs_ideal = ratio(found[limit], ideal)
        rows.append(
            report.row(
                "5",
                f"creates at 50 ms each, max_concurrent_operations {limit}",
                found[limit],
                "/s",
                vs=f"ideal {limit / LATENCY:,.0f}/s",
                ratio=vs_ideal,
                target=f"≥ {NEAR} (near-linear)",
                met=vs_ideal["of_medians"] >= NEAR,
            )
        )
    for limit in LIMITS[1:]:
        rows.append(
            report.row(
                "5",
                f"… scaling {LIMITS[0]} → {limit} (ideal {limit / LIMITS[0]:.0f})",
                found[limit],
                "/s",
                vs=f"max_concurrent_operations {LIMITS[0]}",
                ratio=ratio(found[limit], found[LIMITS[0]]),
            )
        )
    return {"per_slot": per_slot, "rates": found, "rows": rows}
