"""Notifications published with kombu, their confirms waited for in batches.

oslo.messaging's Notifier waits for the broker's confirm of each
notification before it sends the next, and most of the CPU a notification
costs is spent in its layers (figure 12 measures how far that is from
what Python and the broker allow). By default (``notification_publisher =
kombu``) the worker writes the same bytes itself: oslo's ``messagingv2`` envelope
(``oslo.version`` 2.0, ``oslo.message`` holding the message, its
``_unique_id`` and the request context as ``_context_*`` keys), on the
control exchange, routing key ``<topic>.<priority>``, with the queue oslo
declares for it.

One thread publishes whatever is queued, waits once for the broker to
confirm all of it, then takes the next batch; a notification counts as
sent only once it is confirmed. When the connection fails, the thread
reconnects and publishes the unconfirmed batch again: at least once, as
oslo's retries give, each copy with the ``message_id`` of the first. One
channel keeps every object's events in order. While idle, the thread sends
the connection's heartbeats and so notices a broker that went away.
"""

from __future__ import annotations

import datetime
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import amqp
import kombu
from oslo_serialization import jsonutils

from volworker import batches

__all__ = ["BatchPublisher", "envelope"]

LOG = logging.getLogger(__name__)

_STOP = object()
#: how long to wait for a batch's confirms before the connection counts as lost
CONFIRM_TIMEOUT = 30.0


def envelope(
    context: dict[str, Any],
    publisher_id: str,
    event_type: str,
    priority: str,
    payload: dict[str, Any],
) -> str:
    """One notification as oslo's messagingv2 driver puts it on the wire."""
    message: dict[str, Any] = {
        "message_id": str(uuid.uuid4()),
        "publisher_id": publisher_id,
        "event_type": event_type,
        "priority": priority.upper(),
        "payload": payload,
        "timestamp": str(datetime.datetime.now(datetime.UTC).replace(tzinfo=None)),
        "_unique_id": uuid.uuid4().hex,
    }
    message.update((f"_context_{key}", value) for key, value in context.items())
    return str(
        jsonutils.dumps(
            {"oslo.version": "2.0", "oslo.message": jsonutils.dumps(message)}
        )
    )


class BatchPublisher:
    """Publishes to one exchange from one thread, confirms waited in batches."""

    def __init__(
        self,
        connect: Callable[[], kombu.Connection],
        exchange: str,
        *,
        durable: Callable[[], bool],
        batch_max: int = 256,
    ) -> None:
        self._connect = connect
        self._exchange = exchange
        self._durability = durable
        self._durable = False
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, name="notify-publisher", daemon=True
        )
        self._conn: kombu.Connection | None = None
        self._channel: Any = None
        self._declared: set[str] = set()
        self._sent = 0
        self._confirmed = 0
        self._refused = False
        #: published and confirmed, since start (for tests and metrics)
        self.confirmed = 0
        #: connections lost and made again
        self.reconnects = 0

    def start(self) -> None:
        self._thread.start()

    def notify(
        self,
        topic: str,
        context: dict[str, Any],
        publisher_id: str,
        event_type: str,
        priority: str,
        payload: dict[str, Any],
    ) -> None:
        """Queue a notification (enveloped on this publisher's thread, so
        ``payload`` must not change any more); thread-safe."""
        fields = (context, publisher_id, event_type, priority, payload)
        self._queue.put((f"{topic}.{priority}", fields))

    def stop(self, timeout: float | None = None) -> None:
        """Publish what is queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = batches.take(
                self._queue, self._batch_max, _STOP, timeout=self._idle_wait()
            )
            if batch:
                # enveloped once: a copy sent again after a reconnect has
                # the same message_id, by which a consumer can drop it
                self._send(
                    [(key, envelope(*fields)) for key, fields in batch], stopping
                )
            elif not stopping:
                self._heartbeat()
        self._close()

    def _idle_wait(self) -> float | None:
        """How long to wait for work before looking after the connection:
        twice per heartbeat interval, as oslo's driver does."""
        conn = self._conn
        interval = getattr(conn, "heartbeat", 0) if conn is not None else 0
        return interval / 2 if interval else None

    def _heartbeat(self) -> None:
        """While idle: send a heartbeat, and notice a broker that is gone
        (the next batch then connects again)."""
        if self._conn is None:
            return
        try:
            self._conn.heartbeat_check()
            self._conn.drain_events(timeout=0)
        except TimeoutError:
            pass
        except Exception as exc:
            LOG.warning("The notification connection was lost (%s)", exc)
            self._close()
            self.reconnects += 1

    def _send(self, batch: list[tuple[str, str]], stopping: bool) -> None:
        delay = 0.5
        while True:
            try:
                self._publish(batch)
                return
            except Exception as exc:
                LOG.warning(
                    "Publishing %d notifications failed (%s); retrying in %.1fs",
                    len(batch),
                    exc,
                    delay,
                )
                self._close()
                self.reconnects += 1
                if stopping:
                    LOG.error("Stopping: %d notifications not sent", len(batch))
                    return
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _publish(self, batch: list[tuple[str, str]]) -> None:
        channel = self._open()
        for routing_key, body in batch:
            if routing_key not in self._declared:
                self._declare(channel, routing_key)
            message = amqp.Message(
                body,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2 if self._durable else 1,
            )
            channel.basic_publish(
                message, exchange=self._exchange, routing_key=routing_key
            )
            self._sent += 1
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        assert self._conn is not None
        while self._confirmed < self._sent:
            if self._refused:
                raise RuntimeError("the broker refused a notification")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no confirm from the broker")
            self._conn.drain_events(timeout=left)
        self.confirmed += len(batch)

    def _open(self) -> Any:
        if self._channel is not None:
            return self._channel
        self._durable = self._durability()
        conn = self._connect()
        conn.connect()
        self._conn = conn
        channel = conn.channel()
        # As oslo does, follow an exchange that exists already, whatever
        # its durability; a passive declaration that fails closes its
        # channel, hence a channel of its own.
        if not self._exists(
            lambda ch: ch.exchange_declare(self._exchange, "topic", passive=True)
        ):
            channel.exchange_declare(
                self._exchange, "topic", durable=self._durable, auto_delete=False
            )
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self._channel = channel
        self._sent = self._confirmed = 0
        self._refused = False
        return channel

    def _exists(self, declare: Callable[[Any], Any]) -> bool:
        assert self._conn is not None
        channel = self._conn.channel()
        try:
            declare(channel)
        except amqp.exceptions.NotFound:
            return False
        channel.close()
        return True

    def _declare(self, channel: Any, routing_key: str) -> None:
        """The queue oslo declares for a notification topic, so that what
        nobody consumes yet waits for its consumer."""
        if not self._exists(lambda ch: ch.queue_declare(routing_key, passive=True)):
            channel.queue_declare(routing_key, durable=self._durable, auto_delete=False)
        channel.queue_bind(routing_key, self._exchange, routing_key=routing_key)
        self._declared.add(routing_key)

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._confirmed = max(self._confirmed, tag)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._refused = True

    def _close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        self._declared.clear()
        if conn is not None:
            try:
                conn.release()
            except Exception as exc:
                LOG.debug("Closing the notification connection: %s", exc)
