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
import time
from collections.abc import Callable
from typing import Any

import kombu

from volworker.confirming import ConfirmingPublisher
from volworker.frames import PublishFrames
from volworker.rpc.wire import JSON

__all__ = ["ReplyPublisher"]

LOG = logging.getLogger(__name__)

_PROPERTIES = (
    ("content_type", JSON),
    ("content_encoding", "utf-8"),
    ("delivery_mode", 2),
)

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


class ReplyPublisher(ConfirmingPublisher):
    """Publishes call answers from one thread, confirms waited for once per
    batch (:mod:`volworker.confirming`)."""

    items = "call answers"

    def __init__(
        self,
        connect: Callable[[], kombu.Connection],
        *,
        missing_queue_timeout: float = 60.0,
        heartbeat_rate: int = 2,
        batch_max: int = 256,
        name: str = "rpc-replies",
    ) -> None:
        super().__init__(
            connect, name=name, batch_max=batch_max, heartbeat_rate=heartbeat_rate
        )
        self._missing_timeout = missing_queue_timeout
        self._bounced: list[bytes] = []
        self._returned: list[_Reply] = []
        self._retry_at = 0.0
        self._gone: dict[str, float] = {}

    def send(self, reply_q: str, msg_id: Any, body: bytes) -> None:
        """Queue an answer for ``reply_q`` (thread-safe)."""
        self._put(_Reply(reply_q, msg_id, body))

    def _wait(self) -> float | None:
        return RETRY_INTERVAL if self._returned else super()._wait()

    def _prepare(self, batch: list[Any]) -> list[Any]:
        if self._returned and time.monotonic() >= self._retry_at:
            batch += self._returned
            self._returned = []
        return [reply for reply in batch if self._deliverable(reply)]

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

    def _publish(self, batch: list[Any]) -> None:
        self._bounced = []
        super()._publish(batch)

    def _frame(self, frames: PublishFrames, item: _Reply) -> None:
        frames.publish(item.body, "", item.reply_q, _PROPERTIES, mandatory=True)

    def _published(self, batch: list[Any]) -> None:
        """Keep what the broker returned for want of a queue, to try again."""
        bounced = set(self._bounced)
        now = time.monotonic()
        for reply in batch:
            if reply.body not in bounced:
                continue
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

    def _opened(self, conn: kombu.Connection, channel: Any) -> None:
        # A returned answer is matched by its bytes; py-amqp would hand its
        # body over decoded (it has a content_encoding).
        channel.auto_decode = False
        channel.events["basic_return"].add(self._on_return)

    def _on_return(
        self, exc: Exception, exchange: str, routing_key: str, message: Any
    ) -> None:
        self._bounced.append(bytes(message.body))

    def _stopping(self) -> None:
        if self._returned:
            LOG.warning(
                "Stopping: %d answer(s) to callers whose reply queue is missing "
                "not sent",
                len(self._returned),
            )
