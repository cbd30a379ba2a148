"""The Grafana dashboard drawn without Grafana: each panel's queries run as
range queries in a real Prometheus and drawn as lines (stat panels as their
last value) where the dashboard places them, in one SVG. It is what the
README shows, made by tests/deploy/test_dashboard.py."""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

__all__ = ["Series", "render"]

#: (legend, [(seconds, value)]) for one series of a panel's query
Series = tuple[str, list[tuple[float, float]]]

COLUMN, ROW, PAD = 48, 30, 6
COLOURS = ("#3274d9", "#e0752d", "#56a64b", "#a352cc", "#d44a3a", "#8ab8ff")
_SCALES = {
    "bytes": ((1024**4, "TiB"), (1024**3, "GiB"), (1024**2, "MiB"), (1, "B")),
    "s": ((1, "s"), (1e-3, "ms")),
    "percentunit": ((0.01, "%"),),
}


def _number(value: float, unit: str) -> str:
    for size, suffix in _SCALES.get(unit, ()):
        if abs(value) >= size or size == _SCALES[unit][-1][0]:
            return f"{value / size:.4g} {suffix}"
    suffix = {"ops": "/s", "reqps": "/s"}.get(unit, "")
    return f"{value:.4g}{suffix}"


def _legend(template: str, labels: dict[str, str]) -> str:
    for key, value in labels.items():
        template = template.replace("{{" + key + "}}", value)
    return template


def _box(panel: dict[str, Any]) -> tuple[int, int, int, int]:
    grid = panel["gridPos"]
    return (
        grid["x"] * COLUMN + PAD,
        grid["y"] * ROW + PAD,
        grid["w"] * COLUMN - 2 * PAD,
        grid["h"] * ROW - 2 * PAD,
    )


def _lines(
    series: list[Series], box: tuple[int, ...], span: tuple[float, float], unit: str
) -> list[str]:
    x, y, w, h = box
    top, left, height, width = y + 40, x + 8, h - 70, w - 16
    values = [v for _, points in series for _, v in points if math.isfinite(v)]
    high = max([*values, 0.0]) or 1.0
    begin, end = span
    out = [
        f'<line x1="{left}" y1="{top + height}" x2="{left + width}" '
        f'y2="{top + height}" stroke="#ccc"/>',
        f'<text x="{left}" y="{top - 4}" class="axis">{_number(high, unit)}</text>',
    ]
    for i, (legend, points) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(
            f"{left + (t - begin) / (end - begin or 1) * width:.1f},"
            f"{top + height - v / high * height:.1f}"
            for t, v in points
            if math.isfinite(v)
        )
        if path:
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}"/>')
        if i < 4:
            out.append(
                f'<text x="{left + (i % 2) * width / 2}" '
                f'y="{top + height + 14 + (i // 2) * 12}" class="legend" '
                f'fill="{colour}">{html.escape(legend[:40])}</text>'
            )
    return out


def _stat(
    series: list[Series], box: tuple[int, ...], panel: dict[str, Any]
) -> list[str]:
    x, y, w, h = box
    defaults = panel["fieldConfig"]["defaults"]
    mapping = defaults.get("mappings", [{}])[0].get("options", {})
    shown = series[:4]
    each = (h - 40) / max(len(shown), 1)
    out = []
    for i, (legend, points) in enumerate(shown):
        last = f"{points[-1][1]:g}" if points else "none"
        value = mapping.get(last, {"text": last, "color": "grey"})
        top = y + 34 + i * each
        out.append(
            f'<rect x="{x + 8}" y="{top:.0f}" width="{w - 16}" '
            f'height="{each - 8:.0f}" fill="{value["color"]}" opacity="0.8"/>'
            f'<text x="{x + 14}" y="{top + 18:.0f}" class="stat">'
            f"{html.escape(legend)}: {html.escape(value['text'])}</text>"
        )
    return out


def render(
    dashboard: dict[str, Any],
    query_range: Callable[
        [str], list[tuple[dict[str, str], list[tuple[float, float]]]]
    ],
    span: tuple[float, float],
) -> str:
    """The dashboard as an SVG document; ``query_range(expr)`` gives each
    series' labels and points over ``span`` (seconds since the epoch)."""
    panels = dashboard["panels"]
    width = 24 * COLUMN
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels) * ROW
    body = []
    for panel in panels:
        x, y, w, h = box = _box(panel)
        title = html.escape(panel["title"])
        if panel["type"] == "row":
            body.append(f'<text x="{x}" y="{y + 16}" class="row">{title}</text>')
            continue
        series = [
            (_legend(target["legendFormat"], labels), points)
            for target in panel["targets"]
            for labels, points in query_range(target["expr"])
        ]
        unit = panel["fieldConfig"]["defaults"].get("unit", "short")
        drawn = (
            _stat(series, box, panel)
            if panel["type"] == "stat"
            else _lines(series, box, span, unit)
        )
        body.append(
            f'<g class="panel"><rect x="{x}" y="{y}" width="{w}" height="{h}" '
            f'rx="3" fill="#fff" stroke="#ddd"/>'
            f'<text x="{x + 8}" y="{y + 18}" class="title">{title}</text>'
            + "".join(drawn)
            + "</g>"
        )
    style = (
        "text{font-family:sans-serif}.title{font-size:13px;font-weight:bold}"
        ".row{font-size:15px;font-weight:bold}.axis,.legend{font-size:10px}"
        ".stat{font-size:13px;fill:#fff}polyline{stroke-width:1.5}"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><style>{style}</style>'
        f'<rect width="{width}" height="{height}" fill="#f4f5f5"/>'
        + "".join(body)
        + "</svg>\n"
    )
