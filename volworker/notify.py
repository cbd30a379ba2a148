"""Notifications: ``volume.<action>.start|end|error`` and ``snapshot.…``.

Sent through oslo.messaging's Notifier (``messagingv2`` on the
``notifications`` topic) with publisher id ``volworker.<host>@<backend>``.
Publishing waits for the broker, so it happens on the senders's threads, keyed
by the object so that each object's events keep their order.
"""

from __future__ import annotations

import logging
from typing import Any

import oslo_messaging

from volworker.context import RequestContext
from volworker.senders import Senders

__all__ = ["Notifications"]

LOG = logging.getLogger(__name__)


class Notifications:
    """Announces what happens to one backend's volumes and snapshots."""

    def __init__(
        self, transport: oslo_messaging.Transport, publisher_id: str, senders: Senders
    ) -> None:
        self.publisher_id = publisher_id
        self._notifier = oslo_messaging.Notifier(
            transport,
            publisher_id=publisher_id,
            driver="messagingv2",
            topics=["notifications"],
        )
        self._senders = senders

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
        send = self._notifier.error if phase == "error" else self._notifier.info
        self._senders.send(str(payload.get("id")), send, context, event_type, payload)
        LOG.debug("[%s] %s %s", context.request_id, event_type, payload.get("id"))
