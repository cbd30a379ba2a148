"""Sorting and paging of manageable-object listings, as the seed describes.

Drivers build the full list of entries (``reference``, ``size``,
``safe_to_manage``...) and hand it to :func:`paginate`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from volworker import exception

__all__ = ["SORT_DIRS", "SORT_KEYS", "identifier", "paginate"]

SORT_KEYS = ("identifier", "size")
SORT_DIRS = ("asc", "desc")


def identifier(entry: dict[str, Any]) -> str:
    """The value that names an entry: its reference's one value."""
    ref = entry["reference"]
    return str(ref.get("source-name", ref.get("source-id", "")))


def _sort_value(entry: dict[str, Any], key: str) -> Any:
    return identifier(entry) if key == "identifier" else entry["size"]


def _check(sort_keys: Sequence[str], sort_dirs: Sequence[str]) -> list[tuple[str, str]]:
    keys = list(sort_keys or ["identifier"])
    dirs = list(sort_dirs or [])
    for key in keys:
        if key not in SORT_KEYS:
            raise exception.InvalidInput(
                reason=f"sort key {key!r} is not one of {', '.join(SORT_KEYS)}"
            )
    for direction in dirs:
        if direction not in SORT_DIRS:
            raise exception.InvalidInput(
                reason=f"sort direction {direction!r} is not asc or desc"
            )
    if len(dirs) > len(keys):
        raise exception.InvalidInput(reason="more sort directions than sort keys")
    dirs += ["asc"] * (len(keys) - len(dirs))
    if "identifier" not in keys:
        # A marker names an identifier, so the order must be total.
        keys.append("identifier")
        dirs.append("asc")
    return list(zip(keys, dirs, strict=True))


def paginate(
    entries: list[dict[str, Any]],
    marker: str | None,
    limit: int | None,
    offset: int,
    sort_keys: Sequence[str],
    sort_dirs: Sequence[str],
) -> list[dict[str, Any]]:
    """Sort ``entries``, then drop through ``marker``, skip ``offset``, cap at
    ``limit``."""
    if limit is not None and limit < 0:
        raise exception.InvalidInput(reason=f"limit {limit} is negative")
    if offset is not None and offset < 0:
        raise exception.InvalidInput(reason=f"offset {offset} is negative")
    result = list(entries)
    # Stable sorts applied from the last key to the first give a
    # multi-key sort with a direction per key.
    for key, direction in reversed(_check(sort_keys, sort_dirs)):
        result.sort(
            key=functools.partial(_sort_value, key=key), reverse=direction == "desc"
        )
    if marker is not None:
        names = [identifier(e) for e in result]
        if marker not in names:
            raise exception.InvalidInput(reason=f"marker {marker!r} is not listed")
        result = result[names.index(marker) + 1 :]
    result = result[offset or 0 :]
    return result if limit is None else result[:limit]
