"""Sending to the broker without holding up the worker.

Every publish waits for the broker's confirm, so notifications and replies
go out from a few sender threads. Messages that share a key (a volume id, a
reply's message id) go out from the same thread, in the order given, so a
``.start`` notification always precedes its ``.end``.
"""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from collections.abc import Callable
from typing import Any

__all__ = ["Senders"]

LOG = logging.getLogger(__name__)

_STOP = object()


class Senders:
    """A fixed pool of sender threads with FIFO order per key."""

    def __init__(self, threads: int = 8, name: str = "sender") -> None:
        self._queues: list[queue.SimpleQueue[Any]] = [
            queue.SimpleQueue() for _ in range(threads)
        ]
        self._threads = [
            threading.Thread(
                target=self._run, args=(q,), name=f"{name}-{i}", daemon=True
            )
            for i, q in enumerate(self._queues)
        ]
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            for thread in self._threads:
                thread.start()

    def send(
        self, key: str | None, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        """Run ``fn(*args, **kwargs)`` on the thread that owns ``key``."""
        index = zlib.crc32((key or "").encode()) % len(self._queues)
        self._queues[index].put((fn, args, kwargs))

    def stop(self, timeout: float | None = None) -> None:
        """Send what is queued, then stop the threads."""
        if not self._started:
            return
        for q in self._queues:
            q.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)
        self._started = False

    @staticmethod
    def _run(q: queue.SimpleQueue[Any]) -> None:
        while (item := q.get()) is not _STOP:
            fn, args, kwargs = item
            try:
                fn(*args, **kwargs)
            except Exception:
                LOG.exception("Sending %s failed", getattr(fn, "__qualname__", fn))
