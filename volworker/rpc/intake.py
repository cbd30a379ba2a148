"""What RequestServer consumes through, whichever library reads the broker:
oslo.messaging's AMQP listener, changed to acknowledge a cast only when
asked (``_amqp.py``), gives these deliveries in arrival order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import oslo_messaging

from volworker.rpc import _amqp

__all__ = ["Delivery", "Listener", "open_listener"]


class Delivery(Protocol):
    """One request off the queue."""

    @property
    def message(self) -> dict[str, Any]:
        """``method``, ``args``, ``version`` and maybe ``namespace``."""

    @property
    def ctxt(self) -> dict[str, Any]:
        """The request context the sender packed (``_context_*``)."""

    @property
    def unique_id(self) -> Any:
        """The sender's ``_unique_id`` (anything a sender put there)."""

    @property
    def msg_id(self) -> str:
        """What a call's answer is ordered by."""

    @property
    def is_call(self) -> bool:
        """Whether the sender waits for an answer."""

    def acknowledge(self) -> None:
        """Take the message off the broker; any thread may call it."""

    def reply(self, reply: Any = None, failure: Any = None) -> None:
        """Answer a call with ``reply``, or ``failure`` (an exc_info triple)."""


class Listener(Protocol):
    """A consumer of one backend's queues, polled from one thread."""

    def poll_batch(self, timeout: float, batch_size: int) -> Sequence[Delivery]:
        """What has arrived, up to ``batch_size``, waiting at most
        ``timeout`` seconds for the first."""

    def stop(self) -> None:
        """Stop consuming (another thread than the poller's)."""

    @property
    def stopped(self) -> bool:
        """Whether stop() has taken effect and nothing is left to poll."""

    def close(self) -> None:
        """Send what acknowledgements are due and disconnect."""


def open_listener(
    transport: oslo_messaging.Transport,
    topic: str,
    servers: Sequence[str],
    prefetch: int,
) -> Listener:
    """Declare ``topic``, ``topic.<server>`` for each server and the fanout,
    and return a listener on them."""
    listener: Listener = _amqp.open_listener(
        transport, topic, servers, prefetch=prefetch
    )
    return listener
