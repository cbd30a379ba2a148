"""One backend's RPC intake: a thread that takes requests off its queues.

The thread polls the backend's queues (topic, topic.<host>@<backend>, in a
cluster topic.<cluster>@<backend>, and the fanout) and hands each request to
the dispatcher in the order it arrived. Stopping leaves every request not yet
handed over on the broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import oslo_messaging

from volworker.rpc._amqp import Delivery, Listener, open_listener

__all__ = ["RequestServer"]

LOG = logging.getLogger(__name__)

POLL_TIMEOUT = 1.0


class RequestServer:
    """Consumes one backend's queues on a thread of its own."""

    def __init__(
        self,
        transport: oslo_messaging.Transport,
        topic: str,
        servers: Sequence[str],
        batch_size: int = 64,
    ) -> None:
        self.topic = topic
        self.servers = list(servers)
        self._transport = transport
        self._handle: Callable[[Delivery], None] = lambda delivery: None
        self._batch_size = batch_size
        self._listener: Listener | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def open(self) -> None:
        """Declare the queues without consuming: requests sent from now on
        wait in them, even if this process never gets to start()."""
        if self._listener is None:
            self._listener = open_listener(self._transport, self.topic, self.servers)

    def start(self, handle: Callable[[Delivery], None]) -> None:
        """Consume, handing each request to ``handle`` in arrival order."""
        self.open()
        self._handle = handle
        self._thread = threading.Thread(
            target=self._run, name=f"rpc-{self.servers[0]}", daemon=True
        )
        self._thread.start()
        LOG.info("Consuming %s on %s", ", ".join(self.servers), self.topic)

    def _run(self) -> None:
        assert self._listener is not None
        listener = self._listener
        while True:
            try:
                batch = listener.poll_batch(POLL_TIMEOUT, self._batch_size)
            except Exception:
                LOG.exception("Polling %s failed; retrying", self.servers[0])
                time.sleep(1)
                continue
            if self._stopping.is_set():
                if batch:
                    LOG.info("Left %d request(s) on the broker at stop", len(batch))
                if listener.stopped:
                    return
                time.sleep(0.01)
                continue
            for delivery in batch:
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
