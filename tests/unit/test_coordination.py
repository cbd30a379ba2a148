"""The tooz settings a cluster's member_timeout implies."""

from __future__ import annotations

import urllib.parse

import pytest

from volworker.coordination import _with_member_timeout


def _query(url: str) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)


def test_a_silent_member_is_forgotten_and_its_locks_freed_in_time() -> None:
    url = _with_member_timeout("redis://127.0.0.1:6379", 30)
    assert _query(url) == {"membership_timeout": ["10"], "lock_timeout": ["30"]}


def test_what_the_operator_set_stays() -> None:
    url = _with_member_timeout("redis://h:6379?lock_timeout=90&db=2", 30)
    assert _query(url) == {
        "lock_timeout": ["90"],
        "db": ["2"],
        "membership_timeout": ["10"],
    }


@pytest.mark.parametrize("url", ["file:///var/lib/volworker/locks", "file://x"])
def test_file_locks_are_left_alone(url: str) -> None:
    assert _with_member_timeout(url, 30) == url
