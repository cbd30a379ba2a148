"""Printing results: aligned plain-text tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TextIO

__all__ = ["ALL_FORMATS", "FORMATS", "Output", "cell"]

#: What every command prints.
FORMATS = ("table", "json")
#: Every format some command prints (``attach``: ``uri``, ``qemu``).
ALL_FORMATS = (*FORMATS, "uri", "qemu")

#: Fields shown first, in this order, when a record is printed for people.
LEADING_FIELDS = ("id", "name", "status", "size", "host", "volume_id", "error")


def cell(value: Any) -> str:
    """One value as table text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    return str(value)


def _flatten(record: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested objects as dotted keys: ``data.port``."""
    for key, value in record.items():
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _ordered(record: Mapping[str, Any]) -> list[tuple[str, Any]]:
    first = [k for k in LEADING_FIELDS if k in record]
    rest = [k for k in record if k not in first]
    return [(k, record[k]) for k in first + rest]


def _aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            text.ljust(width) for text, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    ]


class Output:
    """Writes results to ``stream`` in the chosen format."""

    def __init__(self, fmt: str = "table", stream: TextIO | None = None) -> None:
        self.fmt = fmt
        self.stream = stream or sys.stdout

    def _json(self, data: Any) -> None:
        json.dump(data, self.stream, indent=2, sort_keys=False)
        self.stream.write("\n")

    def _lines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.stream.write(line + "\n")

    def record(self, record: Mapping[str, Any]) -> None:
        """One object: a field per line, nested fields dotted."""
        if self.fmt == "json":
            self._json(record)
            return
        pairs = [(key, cell(value)) for key, value in _flatten(dict(_ordered(record)))]
        self._lines(_aligned(pairs) if pairs else [])

    def table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
        """Objects as rows under upper-case column headings."""
        if self.fmt == "json":
            self._json(list(rows))
            return
        header = [c.upper() for c in columns]
        body = [[cell(row.get(c)) for c in columns] for row in rows]
        self._lines(_aligned([header, *body]))

    def line(self, text: str) -> None:
        """One line as it is, in any format: what a command made to be
        pasted or captured (a URI, a command's arguments)."""
        self._lines([text])

    def value(self, key: str, value: Any) -> None:
        """A single value: alone on its line, or ``{key: value}`` in JSON."""
        if self.fmt == "json":
            self._json({key: value})
        else:
            self._lines([cell(value)])
