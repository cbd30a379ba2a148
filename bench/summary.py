"""Summaries of repeated measurements and ratios between them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["percentile", "ratio", "summary"]


def summary(samples: Sequence[float]) -> dict[str, Any]:
    """min / median / max of the repeats, and the repeats themselves."""
    return {
        "min": min(samples),
        "median": statistics.median(samples),
        "max": max(samples),
        "samples": list(samples),
    }


def ratio(this: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """``this / base`` as a summary: median over median, and the spread of
    the per-repeat ratios (repeat i of ``this`` against repeat i of
    ``base``, which ran side by side)."""
    pairs = [a / b for a, b in zip(this["samples"], base["samples"], strict=False) if b]
    result = summary(pairs) if pairs else {}
    result["of_medians"] = this["median"] / base["median"] if base["median"] else None
    return result


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``samples``."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))
    return ordered[rank]
