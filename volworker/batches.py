"""Taking work off a queue in batches, for the threads that commit or
publish many items at once."""

from __future__ import annotations

import queue
from typing import Any

__all__ = ["take"]


def take(
    source: queue.SimpleQueue[Any], most: int, stop: Any, timeout: float | None = None
) -> tuple[list[Any], bool]:
    """Wait for an item (at most ``timeout`` seconds: then the batch is
    empty), then take what else is queued, up to ``most``; and whether
    ``stop`` came (nothing after it is taken)."""
    try:
        first = source.get(timeout=timeout)
    except queue.Empty:
        return [], False
    if first is stop:
        return [], True
    batch = [first]
    while len(batch) < most:
        try:
            item = source.get_nowait()
        except queue.Empty:
            break
        if item is stop:
            return batch, True
        batch.append(item)
    return batch, False
