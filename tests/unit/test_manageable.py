"""Sorting and paging of manageable listings."""

from __future__ import annotations

import pytest

from volworker import exception
from volworker.driver.manageable import paginate


def _entries() -> list[dict]:
    return [
        {"reference": {"source-name": n}, "size": s}
        for n, s in (("b", 2), ("a", 2), ("c", 1), ("d", 3))
    ]


def _names(entries: list[dict]) -> list[str]:
    return [e["reference"]["source-name"] for e in entries]


def test_default_order_is_identifier() -> None:
    assert _names(paginate(_entries(), None, None, 0, [], [])) == ["a", "b", "c", "d"]


def test_size_then_identifier_breaks_ties() -> None:
    got = paginate(_entries(), None, None, 0, ["size"], ["desc"])
    assert _names(got) == ["d", "a", "b", "c"]


def test_marker_offset_limit() -> None:
    got = paginate(_entries(), "a", 2, 1, ["identifier"], ["asc"])
    assert _names(got) == ["c", "d"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sort_keys": ["colour"]}, "colour"),
        ({"sort_dirs": ["up"]}, "up"),
        ({"marker": "zz"}, "zz"),
        ({"limit": -1}, "limit"),
        ({"sort_keys": ["size"], "sort_dirs": ["asc", "desc"]}, "directions"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    args = {
        "marker": None,
        "limit": None,
        "offset": 0,
        "sort_keys": [],
        "sort_dirs": [],
    }
    with pytest.raises(exception.InvalidInput, match=match):
        paginate(_entries(), **{**args, **kwargs})
