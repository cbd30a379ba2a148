"""How much accepted work a backend holds, so that its intake can stop in time.

The RPC thread counts each command it hands to the manager (``taken``); the
event loop counts each one that ends, however it ends (``finished``). The
difference is what the worker holds in memory: journaled or about to be,
waiting for its turn or running. At ``limit`` the intake stops taking casts
off the broker, and it resumes once the count is down to ``resume_at``, so
that casts come in batches that the journal commits together rather than
one at a time.

Each counter is written by one thread only, so reading the two from any
thread needs no lock; a wake-up is never lost because every ``finished``
looks again while the intake waits.
"""

from __future__ import annotations

import threading

__all__ = ["Backlog", "default_limit"]


def default_limit(configured: int | None, max_concurrent: int) -> int:
    """The limit ``intake_limit`` sets; unset (0), twice the operations that
    run at once: one set running, one journaled and ready to follow."""
    return configured or 2 * max_concurrent


class Backlog:
    """Accepted, unfinished commands of one backend, against a limit."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a backlog limit must be at least 1, not {limit}")
        self.limit = limit
        self.resume_at = limit - max(1, limit // 4)
        self._taken = 0
        self._finished = 0
        self._room = threading.Event()
        self._room.set()

    @property
    def count(self) -> int:
        return self._taken - self._finished

    def taken(self) -> None:
        """A command was handed over (the RPC thread)."""
        self._taken += 1
        if self.count >= self.limit:
            self._room.clear()
            # Work may have finished between the count and the clear.
            if self.count <= self.resume_at:
                self._room.set()

    def finished(self) -> None:
        """A command ended (the event loop)."""
        self._finished += 1
        if not self._room.is_set() and self.count <= self.resume_at:
            self._room.set()

    def full(self) -> bool:
        """Whether the intake must hold casts back."""
        return not self._room.is_set()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for room; whether there is some."""
        return self._room.wait(timeout)
