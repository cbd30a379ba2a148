"""What RequestServer consumes through, whichever library reads the broker.

``rpc_intake = kombu`` (the default) is volworker's own listener on
py-amqp (``kombu_intake.py``); ``rpc_intake = oslo`` is oslo.messaging's
AMQP listener, changed to acknowledge a cast only when asked
(``_amqp.py``), which the worker also uses, with a warning, for what the
kombu intake does not implement (quorum or stream queues, TLS, another
transport). Both
give the same deliveries in arrival order, and either can consume the
queues the other declared.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import oslo_messaging
from oslo_config import cfg

from volworker.rpc import _amqp
from volworker.rpc.kombu_intake import KombuIntake
from volworker.rpc.kombu_settings import Settings, unsupported

__all__ = ["Delivery", "Listener", "open_listener"]

LOG = logging.getLogger(__name__)


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

    @property
    def reply_waits(self) -> bool:
        """Whether reply() waits for the broker (the dispatcher then calls
        it on a sender thread) rather than queue the answer for a publisher
        of the listener's own."""

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
    kind: str,
    conf: cfg.ConfigOpts,
    transport: oslo_messaging.Transport,
    topic: str,
    servers: Sequence[str],
    prefetch: int,
) -> Listener:
    """Declare ``topic``, ``topic.<server>`` for each server and the fanout,
    and return the listener of ``kind`` (``oslo`` or ``kombu``) on them."""
    if kind == "kombu":
        reason = unsupported(conf)
        if reason is None:
            settings = Settings.from_conf(conf, topic, servers, prefetch)
            return KombuIntake(settings, servers[0]).open()
        LOG.warning(
            "rpc_intake = kombu does not implement %s; oslo.messaging's "
            "listener consumes %s",
            reason,
            servers[0],
        )
    listener: Listener = _amqp.open_listener(
        transport, topic, servers, prefetch=prefetch
    )
    return listener
