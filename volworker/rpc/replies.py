"""Answers to RPC calls, published with kombu from one thread.

The kombu intake hands each answer here from whatever thread made it; one
thread publishes what is queued on one confirm channel and waits once for
the broker's confirms of the whole batch (kombu is not thread-safe, and a
wait per answer is most of what a publish costs). As oslo's server does,
an answer goes to the default exchange under the caller's reply queue,
mandatory: one the broker returns because that queue is missing (its
caller reconnecting, or gone) is tried again every quarter second for
``missing_queue_timeout`` seconds, then abandoned with an error, and
answers to that queue are dropped at once for a minute after. A batch whose
connection fails is published again on a new one: at least once, and the
caller drops a copy by the answer's ``_unique_id``.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import amqp
import kombu

from volworker import batches
from volworker.rpc.wire import JSON

__all__ = ["ReplyPublisher"]

LOG = logging.getLogger(__name__)

_STOP = object()
#: how long to wait for a batch's confirms before the connection counts as lost
CONFIRM_TIMEOUT = 30.0
#: how often an answer to a missing reply queue is tried again
RETRY_INTERVAL = 0.25
#: how long a reply queue found missing for good is not tried again
GONE_FOR = 60.0


@dataclasses.dataclass(slots=True)
class _Reply:
    reply_q: str
    msg_id: Any
    body: bytes
    #: when a returned answer is given up (0: never returned yet)
    deadline: float = 0.0


class ReplyPublisher:
    """Publishes call answers from one thread, confirms waited in batches."""

    def __init__(
        self,
        connect: Callable[[], kombu.Connection],
        *,
        missing_queue_timeout: float = 60.0,
        heartbeat_rate: int = 2,
        batch_max: int = 256,
        name: str = "rpc-replies",
    ) -> None:
        self._connect = connect
        self._missing_timeout = missing_queue_timeout
        self._heartbeat_rate = heartbeat_rate
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._name = name
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._conn: kombu.Connection | None = None
        self._channel: Any = None
        self._sent = 0
        self._unconfirmed: set[int] = set()
        self._refused = False
        self._bounced: list[bytes] = []
        self._returned: list[_Reply] = []
        self._retry_at = 0.0
        self._gone: dict[str, float] = {}

    def start(self) -> None:
        self._thread.start()

    def send(self, reply_q: str, msg_id: Any, body: bytes) -> None:
        """Queue an answer for ``reply_q`` (thread-safe)."""
        self._queue.put(_Reply(reply_q, msg_id, body))

    def stop(self, timeout: float | None = None) -> None:
        """Publish what is queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            wait = RETRY_INTERVAL if self._returned else self._idle_wait()
            batch, stopping = batches.take(self._queue, self._batch_max, _STOP, wait)
            if self._returned and time.monotonic() >= self._retry_at:
                batch += self._returned
                self._returned = []
            batch = [reply for reply in batch if self._deliverable(reply)]
            if batch:
                self._send(batch, stopping)
            elif not stopping:
                self._look_after()
        if self._returned:
            LOG.warning(
                "Stopping: %d answer(s) to callers whose reply queue is missing "
                "not sent",
                len(self._returned),
            )
        self._close()

    def _idle_wait(self) -> float | None:
        """How long to wait for answers before looking after the
        connection's heartbeats: twice per heartbeat sent, as oslo does."""
        if self._conn is None:
            return None
        heartbeat = self._conn.connection.heartbeat
        return heartbeat / self._heartbeat_rate / 2 if heartbeat else None

    def _look_after(self) -> None:
        """While idle: send a heartbeat, read the broker's, and notice a
        broker that went away (the next answer connects again)."""
        if self._conn is None:
            return
        try:
            self._conn.heartbeat_check(rate=self._heartbeat_rate)
            self._conn.drain_events(timeout=0)
        except TimeoutError:
            pass
        except Exception as exc:
            LOG.warning("%s: the answers' connection was lost (%s)", self._name, exc)
            self._close()

    def _deliverable(self, reply: _Reply) -> bool:
        until = self._gone.get(reply.reply_q)
        if until is None:
            return True
        if time.monotonic() < until:
            LOG.warning(
                "Reply queue %s is gone: answer to %s dropped",
                reply.reply_q,
                reply.msg_id,
            )
            return False
        del self._gone[reply.reply_q]
        return True

    def _send(self, batch: list[_Reply], stopping: bool) -> None:
        delay = 0.5
        while True:
            try:
                self._keep_returned(self._publish(batch))
                return
            except Exception as exc:
                LOG.warning(
                    "Publishing %d call answer(s) failed (%s); retrying in %.1fs",
                    len(batch),
                    exc,
                    delay,
                )
                self._close()
                if stopping:
                    LOG.error("Stopping: %d call answer(s) not sent", len(batch))
                    return
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _publish(self, batch: list[_Reply]) -> list[_Reply]:
        """Publish ``batch`` and wait for its confirms; what the broker
        returned for want of a queue."""
        channel = self._open()
        self._bounced = []
        for reply in batch:
            message = amqp.Message(
                reply.body,
                content_type=JSON,
                content_encoding="utf-8",
                delivery_mode=2,
            )
            channel.basic_publish(
                message, exchange="", routing_key=reply.reply_q, mandatory=True
            )
            self._sent += 1
            self._unconfirmed.add(self._sent)
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        assert self._conn is not None
        while self._unconfirmed:
            if self._refused:
                raise RuntimeError("the broker refused an answer")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no confirm from the broker")
            self._conn.drain_events(timeout=left)
        bounced = set(self._bounced)
        return [reply for reply in batch if reply.body in bounced]

    def _keep_returned(self, returned: list[_Reply]) -> None:
        now = time.monotonic()
        for reply in returned:
            reply.deadline = reply.deadline or now + self._missing_timeout
            if now < reply.deadline:
                self._returned.append(reply)
                continue
            self._gone[reply.reply_q] = now + GONE_FOR
            LOG.error(
                "The answer to %s could not be sent for %.0f s: its reply queue "
                "%s is missing. Abandoning it.",
                reply.msg_id,
                self._missing_timeout,
                reply.reply_q,
            )
        if self._returned:
            self._retry_at = now + RETRY_INTERVAL

    def _open(self) -> Any:
        if self._channel is not None:
            return self._channel
        conn = self._connect()
        conn.connect()
        self._conn = conn
        channel = conn.channel()
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.events["basic_return"].add(self._on_return)
        self._channel = channel
        self._sent = 0
        self._unconfirmed.clear()
        self._refused = False
        return channel

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed = {t for t in self._unconfirmed if t > tag}
        else:
            self._unconfirmed.discard(tag)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._refused = True

    def _on_return(
        self, exc: Exception, exchange: str, routing_key: str, message: Any
    ) -> None:
        self._bounced.append(bytes(message.body))

    def _close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.release()
            except Exception as exc:
                LOG.debug("Closing the reply connection: %s", exc)
