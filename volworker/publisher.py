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
confirm all of it, then takes the next batch (:mod:`volworker.confirming`);
a notification counts as sent only once it is confirmed. After a lost
connection the unconfirmed batch is published again: at least once, as
oslo's retries give, each copy with the ``message_id`` of the first. One
channel keeps every object's events in order.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import amqp
import kombu
from oslo_serialization import jsonutils

from volworker import unique
from volworker.confirming import ConfirmingPublisher
from volworker.frames import PublishFrames

__all__ = ["BatchPublisher", "envelope"]

_JSON = (("content_type", "application/json"), ("content_encoding", "utf-8"))
_DURABLE = (*_JSON, ("delivery_mode", 2))
_TRANSIENT = (*_JSON, ("delivery_mode", 1))


def envelope(
    context: dict[str, Any],
    publisher_id: str,
    event_type: str,
    priority: str,
    payload: dict[str, Any],
) -> str:
    """One notification as oslo's messagingv2 driver puts it on the wire."""
    message: dict[str, Any] = {
        "message_id": unique.uuid4_text(),
        "publisher_id": publisher_id,
        "event_type": event_type,
        "priority": priority.upper(),
        "payload": payload,
        "timestamp": str(datetime.datetime.now(datetime.UTC).replace(tzinfo=None)),
        "_unique_id": unique.hex32(),
    }
    message.update((f"_context_{key}", value) for key, value in context.items())
    return str(
        jsonutils.dumps(
            {"oslo.version": "2.0", "oslo.message": jsonutils.dumps(message)}
        )
    )


class BatchPublisher(ConfirmingPublisher):
    """Publishes notifications to one exchange from one thread, confirms
    waited for once per batch (:mod:`volworker.confirming`)."""

    items = "notifications"

    def __init__(
        self,
        connect: Callable[[], kombu.Connection],
        exchange: str,
        *,
        durable: Callable[[], bool],
        batch_max: int = 256,
        heartbeat_rate: int = 2,
    ) -> None:
        super().__init__(
            connect,
            name="notify-publisher",
            batch_max=batch_max,
            heartbeat_rate=heartbeat_rate,
        )
        self._exchange = exchange
        self._durability = durable
        self._durable = False
        self._declared: set[str] = set()

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
        self._put((f"{topic}.{priority}", fields))

    def _prepare(self, batch: list[Any]) -> list[Any]:
        # enveloped once: a copy sent again after a reconnect has the
        # same message_id, by which a consumer can drop it
        return [(key, envelope(*fields)) for key, fields in batch]

    def _frame(self, frames: PublishFrames, item: tuple[str, str]) -> None:
        routing_key, body = item
        if routing_key not in self._declared:
            self._declare(self._channel, routing_key)
        properties = _DURABLE if self._durable else _TRANSIENT
        frames.publish(body.encode(), self._exchange, routing_key, properties)

    def _opened(self, conn: kombu.Connection, channel: Any) -> None:
        self._durable = self._durability()
        self._declared.clear()
        # As oslo does, follow an exchange that exists already, whatever
        # its durability; a passive declaration that fails closes its
        # channel, hence a channel of its own.
        if not self._exists(
            conn, lambda ch: ch.exchange_declare(self._exchange, "topic", passive=True)
        ):
            channel.exchange_declare(
                self._exchange, "topic", durable=self._durable, auto_delete=False
            )

    @staticmethod
    def _exists(conn: kombu.Connection, declare: Callable[[Any], Any]) -> bool:
        channel = conn.channel()
        try:
            declare(channel)
        except amqp.exceptions.NotFound:
            return False
        channel.close()
        return True

    def _declare(self, channel: Any, routing_key: str) -> None:
        """The queue oslo declares for a notification topic, so that what
        nobody consumes yet waits for its consumer."""
        assert self._conn is not None
        if not self._exists(
            self._conn, lambda ch: ch.queue_declare(routing_key, passive=True)
        ):
            channel.queue_declare(routing_key, durable=self._durable, auto_delete=False)
        channel.queue_bind(routing_key, self._exchange, routing_key=routing_key)
        self._declared.add(routing_key)
