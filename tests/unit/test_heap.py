"""heap.settle: what start built is frozen out of the collector's sight, the
youngest generation is collected less often, and cycles are still found."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from volworker import heap


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_settle_freezes_the_heap_and_still_collects_cycles(restored: None) -> None:
    before = _Node()
    before.other = before  # a cycle that is garbage at start
    gone = weakref.ref(before)
    del before
    heap.settle()
    assert gone() is None, "start's garbage was frozen, not collected"
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
    # Objects made since are the collector's as before.
    after = _Node()
    after.other = after
    still = weakref.ref(after)
    del after
    gc.collect()
    assert still() is None
