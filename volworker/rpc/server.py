"""One backend's RPC intake: a thread that takes requests off its queues.

The thread polls the backend's queues (topic, topic.<host>@<backend>, in a
cluster topic.<cluster>@<backend>, and the fanout) and hands each request to
the dispatcher in the order it arrived. Stopping leaves every request not yet
handed over on the broker.

The intake is bounded: the broker pushes at most ``prefetch`` unacknowledged
messages per queue, and while the manager's backlog is full, a cast that
would be journaled waits here, with everything that arrived after it, so
that a flood stays on the broker instead of in memory. Calls ahead of such a
cast are handed over at once; one behind it waits its turn, since order on
a queue is part of the contract (docs/rpc.md, "Bounded intake").
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence

from volworker.manager.actions import commands
from volworker.manager.backlog import Backlog
from volworker.metrics import intake_held
from volworker.rpc.intake import Delivery, Listener

__all__ = ["RequestServer"]

LOG = logging.getLogger(__name__)

POLL_TIMEOUT = 1.0
#: While casts wait for room: how long a poll looks after the connection
#: (acknowledgements, heartbeats), and how long to wait for room between two.
HOUSEKEEPING_POLL = 0.001
ROOM_WAIT = 0.2


def _needs_room(delivery: Delivery) -> bool:
    """A cast the manager would journal: what the backlog counts."""
    return not delivery.is_call and delivery.message.get("method") in commands()


class RequestServer:
    """Consumes one backend's queues on a thread of its own."""

    def __init__(
        self,
        listen: Callable[[], Listener],
        topic: str,
        servers: Sequence[str],
        batch_size: int = 64,
    ) -> None:
        """``listen`` declares the queues and returns their listener."""
        self.topic = topic
        self.servers = list(servers)
        self._listen = listen
        self._handle: Callable[[Delivery], None] = lambda delivery: None
        self._backlog: Backlog | None = None
        self._batch_size = batch_size
        self._listener: Listener | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def open(self) -> None:
        """Declare the queues without consuming: requests sent from now on
        wait in them, even if this process never gets to start()."""
        if self._listener is None:
            self._listener = self._listen()

    def start(
        self, handle: Callable[[Delivery], None], backlog: Backlog | None = None
    ) -> None:
        """Consume, handing each request to ``handle`` in arrival order;
        casts wait while ``backlog`` is full."""
        self.open()
        self._handle = handle
        self._backlog = backlog
        self._thread = threading.Thread(
            target=self._run, name=f"rpc-{self.servers[0]}", daemon=True
        )
        self._thread.start()
        LOG.info("Consuming %s on %s", ", ".join(self.servers), self.topic)

    def _run(self) -> None:
        assert self._listener is not None
        listener = self._listener
        held: collections.deque[Delivery] = collections.deque()
        while True:
            try:
                # With casts held back, a poll only looks after the
                # connection and keeps what the broker pushes (no more
                # than the prefetch).
                timeout = HOUSEKEEPING_POLL if held else POLL_TIMEOUT
                held.extend(listener.poll_batch(timeout, self._batch_size))
            except Exception:
                LOG.exception("Polling %s failed; retrying", self.servers[0])
                time.sleep(1)
                continue
            if self._stopping.is_set():
                if held:
                    LOG.info("Left %d request(s) on the broker at stop", len(held))
                    held.clear()
                if listener.stopped:
                    return
                time.sleep(0.01)
                continue
            self._hand_over(held)
            # after the hand-over, casts are left only when the backlog is full
            intake_held(self.servers[0], bool(held))
            if held and self._backlog is not None:
                self._backlog.wait(ROOM_WAIT)

    def _hand_over(self, held: collections.deque[Delivery]) -> None:
        """Hand requests over in order, up to the first cast that must wait."""
        backlog = self._backlog
        while held:
            delivery = held[0]
            if backlog is not None and backlog.full() and _needs_room(delivery):
                return
            held.popleft()
            try:
                self._handle(delivery)
            except Exception:
                # The message stays unacknowledged and returns to
                # the queue at the next connection.
                LOG.exception("Dispatching %s failed", delivery.unique_id)

    def consuming(self) -> bool:
        """Whether the intake thread takes requests (for /healthz)."""
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stopping.is_set()

    def stop(self) -> None:
        """Stop taking requests; those not yet handed over stay queued."""
        if self._listener is None or self._stopping.is_set():
            return
        self._stopping.set()
        if self._thread is None:
            return  # opened, never consumed: nothing to hand back
        self._listener.stop()
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        """After stop() and once the journal is done: flush acks, disconnect."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
