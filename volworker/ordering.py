"""Per-volume order: operations on a volume run one at a time, in arrival order.

An operation takes a :class:`Ticket` for every volume it touches (the volume
itself, the volume of a snapshot, the source of a clone) the moment it
arrives. It may start once it is first in line for every one of those
volumes and one of ``max_concurrent`` slots is free. Tickets are queued for
all their volumes at once, in one global arrival order, so two operations can
never wait for each other.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from types import TracebackType

__all__ = ["Ordering", "Ticket"]


class Ticket:
    """One operation's place in line for the volumes it touches."""

    def __init__(self, ordering: Ordering, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self._ordering = ordering
        self._turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._slot = False
        self._released = False
        #: when it took its place (time.monotonic()), for the metrics
        self.since = time.monotonic()

    @property
    def first_in_line(self) -> bool:
        return self._turn.done()

    @property
    def running(self) -> bool:
        """Whether its turn came and it holds a slot."""
        return self._slot

    async def __aenter__(self) -> Ticket:
        """Wait for this ticket's turn on every volume, then for a slot."""
        await asyncio.shield(self._turn)
        await self._ordering.slots.acquire()
        self._slot = True
        self._ordering.running += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def release(self) -> None:
        """Leave every line (whether or not the turn came) and free the slot."""
        if self._released:
            return
        self._released = True
        if self._slot:
            self._ordering.slots.release()
            self._ordering.running -= 1
        self._ordering.leave(self)


class Ordering:
    """FIFO lines per volume and a cap on operations running at once."""

    def __init__(self, max_concurrent: int) -> None:
        self.slots = asyncio.Semaphore(max_concurrent)
        self._lines: dict[str, deque[Ticket]] = {}
        #: every ticket in line, in arrival order, and how many hold a slot
        self._tickets: dict[Ticket, None] = {}
        self.running = 0

    def __len__(self) -> int:
        """How many volumes have operations waiting or running."""
        return len(self._lines)

    def load(self) -> tuple[int, int, float | None]:
        """Tickets waiting and running, and when the one that has waited
        longest took its place (None when none waits). The tickets ahead of
        it all run, so it looks at no more than the slots, however long
        the line (a scrape of the metrics asks, on the loop)."""
        oldest = next((t.since for t in self._tickets if not t.running), None)
        return len(self._tickets) - self.running, self.running, oldest

    def enqueue(self, keys: Iterable[str]) -> Ticket:
        """Take a place in line for ``keys``; call in arrival order."""
        ticket = Ticket(self, tuple(sorted(set(keys))))
        self._tickets[ticket] = None
        for key in ticket.keys:
            self._lines.setdefault(key, deque()).append(ticket)
        self._wake(ticket)
        return ticket

    def _wake(self, ticket: Ticket) -> None:
        if ticket.first_in_line:
            return
        if all(self._lines[key][0] is ticket for key in ticket.keys):
            ticket._turn.set_result(None)

    def leave(self, ticket: Ticket) -> None:
        del self._tickets[ticket]
        for key in ticket.keys:
            line = self._lines[key]
            line.remove(ticket)
            if line:
                self._wake(line[0])
            else:
                del self._lines[key]
