"""Notifications: ``volume.<action>.start|end|error`` and ``snapshot.…``.

Sent as oslo.messaging's ``messagingv2`` notifications on the
``notifications`` topic, publisher id ``volworker.<host>@<backend>``. By
default a :class:`~volworker.publisher.BatchPublisher` sends them, whose one
thread keeps every event in order; with ``notification_publisher = oslo``
oslo's Notifier does, on the senders's threads, keyed by the object so that
each object's events keep their order.
"""

from __future__ import annotations

import logging
from typing import Any

import oslo_messaging

from volworker.context import RequestContext
from volworker.publisher import BatchPublisher
from volworker.senders import Senders

__all__ = ["Notifications"]

LOG = logging.getLogger(__name__)


class Notifications:
    """Announces what happens to one backend's volumes and snapshots."""

    def __init__(
        self,
        transport: oslo_messaging.Transport,
        publisher_id: str,
        senders: Senders,
        publisher: BatchPublisher | None = None,
        topic: str = "notifications",
    ) -> None:
        self.publisher_id = publisher_id
        self._notifier = oslo_messaging.Notifier(
            transport,
            publisher_id=publisher_id,
            driver="messagingv2",
            topics=[topic],
        )
        self._senders = senders
        self._publisher = publisher
        self._topic = topic

    def emit(
        self,
        context: RequestContext,
        kind: str,
        action: str,
        phase: str,
        payload: dict[str, Any],
    ) -> None:
        """Send ``<kind>.<action>.<phase>`` (phase start, end or error)."""
        event_type = f"{kind}.{action}.{phase}"
        if self._publisher is not None:
            self._publisher.notify(
                self._topic,
                context.redacted_copy(),
                self.publisher_id,
                event_type,
                "error" if phase == "error" else "info",
                payload,
            )
        else:
            send = self._notifier.error if phase == "error" else self._notifier.info
            self._senders.send(
                str(payload.get("id")), send, context, event_type, payload
            )
        LOG.debug("[%s] %s %s", context.request_id, event_type, payload.get("id"))
