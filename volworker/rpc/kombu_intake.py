"""The RPC intake of ``rpc_intake = kombu``: py-amqp (through kombu) instead
of oslo.messaging's listener, whose layers cost most of what taking a
request costs (bench figures 1 and 12).

It consumes the queues oslo's RPC server would (``topology.py``), reads
what oslo's clients send (``wire.py``) and gives RequestServer the
deliveries oslo's listener gives (``intake.py``). Answers to calls leave
from a publisher of their own (``replies.py``).

Everything on the connection (``kombu_link.py``) happens on the thread
that polls, and after stop() on a thread of its own that only sends
acknowledgements and answers heartbeats until close(); acknowledgements
from other threads are queued for it (``kombu_acks.py``). A message that
is no request is refused: rejected without requeueing, with a log line
that says why.

A lost connection (a broker restart, a closed socket, missed heartbeats)
is logged and made again, and the queues consumed again. What it
delivered and nobody acknowledged comes back from the broker: the
deliveries not yet handed over are dropped, the acknowledgements still due
on it too, and the journal drops what it already holds.
"""

from __future__ import annotations

import collections
import functools
import logging
import select
import socket
import threading
import time
from typing import Any

import amqp

from volworker.frames import read_ready
from volworker.rpc import wire
from volworker.rpc.kombu_acks import Acks
from volworker.rpc.kombu_link import LOST, Link
from volworker.rpc.kombu_settings import Settings
from volworker.rpc.replies import ReplyPublisher

__all__ = ["KombuDelivery", "KombuIntake"]

LOG = logging.getLogger(__name__)

#: frames read in one turn at most, so acknowledgements go out in between
FRAMES_PER_TURN = 512


class KombuDelivery:
    """One request off the queue."""

    #: reply() only queues the answer for the intake's reply publisher
    reply_waits = False

    __slots__ = (
        "_channel",
        "_intake",
        "_reply_q",
        "_tag",
        "ctxt",
        "is_call",
        "message",
        "msg_id",
        "unique_id",
    )

    def __init__(
        self, intake: KombuIntake, channel: Any, tag: int, request: wire.Request
    ) -> None:
        self._intake, self._channel, self._tag = intake, channel, tag
        self.message = request.message
        self.ctxt = request.ctxt
        self.unique_id = request.unique_id
        # Only a call has a _msg_id; it keys the order of its answer.
        self.is_call = bool(request.msg_id)
        self.msg_id = str(request.msg_id) if self.is_call else ""
        self._reply_q = request.reply_q

    def acknowledge(self) -> None:
        """Queue the acknowledgement for the consumer's thread (thread-safe)."""
        self._intake.acks.add(self._channel, self._tag)

    def reply(self, reply: Any = None, failure: Any = None) -> None:
        """Answer the call (nothing for a cast)."""
        if self.is_call:
            self._intake.answer(self.msg_id, self._reply_q, reply, failure)


class KombuIntake:
    """Consumes one backend's queues; see the module's text."""

    def __init__(self, settings: Settings, name: str) -> None:
        self._settings = settings
        self._name = name
        self._link = Link(settings, name)
        self.acks = Acks(name)
        self._replies = ReplyPublisher(
            functools.partial(settings.connection, f"rpc-replies:{name}"),
            missing_queue_timeout=settings.missing_queue_timeout,
            heartbeat_rate=settings.heartbeat_rate,
            name=f"rpc-replies:{name}",
        )
        self._tags: dict[str, str] = {}
        self._incoming: collections.deque[KombuDelivery] = collections.deque()
        self._lock = threading.Lock()
        self._shutdown = threading.Event()
        self._shutoff = threading.Event()
        self._closing = threading.Event()
        self._keeper: threading.Thread | None = None
        self._polled: tuple[socket.socket, Any, Any] | None = None

    def open(self) -> KombuIntake:
        """Connect (retrying until the broker answers, as oslo does) and
        declare the queues; nothing is consumed before the first poll."""
        self._replies.start()
        self._link.open()
        LOG.info(
            "%s: rpc_intake = kombu takes requests from %s",
            self._name,
            ", ".join(b.queue for b in self._settings.bindings),
        )
        return self

    @property
    def stopped(self) -> bool:
        return self._shutoff.is_set()

    def poll_batch(self, timeout: float, batch_size: int) -> list[KombuDelivery]:
        """The requests at hand (up to ``batch_size``), waiting at most
        ``timeout`` seconds for the first one."""
        if self.acks.owner is None:
            with self._lock:
                if self._shutoff.is_set():
                    return []
                self.acks.owner = threading.get_ident()
        if self._shutoff.is_set():
            return []
        deadline = time.monotonic() + timeout
        while not self._shutdown.is_set():
            if not self._incoming:
                self._turn(max(0.0, deadline - time.monotonic()), consume=True)
            if self._incoming:
                count = min(batch_size, len(self._incoming))
                return [self._incoming.popleft() for _ in range(count)]
            if time.monotonic() >= deadline:
                return []
        self._quiesce()
        return []

    def stop(self) -> None:
        """Stop consuming; acknowledgements still go out until close()."""
        with self._lock:
            self._shutdown.set()
            if self.acks.owner is None:
                self._shutoff.set()  # never polled: nobody else to wait for
        self.acks.wake()
        self._shutoff.wait()
        self._keeper = threading.Thread(
            target=self._keep, name=f"acks-{self._name}", daemon=True
        )
        self._keeper.start()

    def close(self) -> None:
        """Send the acknowledgements still due and the answers queued, and
        disconnect: what was received and never acknowledged returns to its
        queue."""
        self._closing.set()
        self.acks.wake()
        if self._keeper is not None:
            self._keeper.join()
        try:
            self.acks.send(self._link.channel)
        except LOST as exc:
            LOG.info("%s: acknowledgements at close: %s", self._name, exc)
        self._link.close()
        self._replies.stop(timeout=10)
        self.acks.close()

    def answer(self, msg_id: str, reply_q: Any, result: Any, failure: Any) -> None:
        """Queue the answer to call ``msg_id`` (thread-safe)."""
        if not isinstance(reply_q, str) or not reply_q:
            LOG.warning("Call %s names no reply queue: its answer is dropped", msg_id)
            return
        if self._closing.is_set():
            LOG.warning("Intake closed: the answer to %s is dropped", msg_id)
            return
        self._replies.send(reply_q, msg_id, wire.reply_body(msg_id, result, failure))

    def _consume(self) -> None:
        arguments = self._settings.consumer_arguments
        for binding in self._settings.bindings:
            tag = self._link.channel.basic_consume(
                binding.queue, callback=self._on_message, arguments=arguments
            )
            self._tags[tag] = binding.queue

    def _on_message(self, raw: amqp.Message) -> None:
        if self._shutdown.is_set():
            return  # never handed over: it returns to its queue at close
        properties = raw.properties
        headers = properties.get("application_headers") or {}
        compression = headers.get("compression")
        try:
            request = wire.decode(
                raw.body,
                properties.get("content_type"),
                str(compression) if compression else None,
            )
        except wire.BadMessage as exc:
            queue = self._tags.get(raw.delivery_info.get("consumer_tag"), "?")
            LOG.warning("%s: refused a message on %s: %s", self._name, queue, exc)
            raw.channel.basic_reject(raw.delivery_tag, requeue=False)
            return
        self._incoming.append(
            KombuDelivery(self, raw.channel, raw.delivery_tag, request)
        )

    def _turn(self, timeout: float, *, consume: bool) -> None:
        """One look at the connection: send the acknowledgements due, wait up
        to ``timeout`` for frames or a wake-up, read, answer heartbeats."""
        link = self._link
        if link.channel is None:
            if consume:
                link.reopen(timeout, self._shutdown)
            else:
                self._closing.wait(timeout)
            return
        try:
            if consume and not self._tags:
                self._consume()
            self.acks.send(link.channel)
            self._wait(min(timeout, self._settings.tick))
            self.acks.send(link.channel)
            link.connection.heartbeat_tick(self._settings.heartbeat_rate)
        except LOST as exc:
            self._lost(exc)

    def _polls(self, sock: socket.socket) -> tuple[Any, Any]:
        """poll() objects for the broker's socket and the waker, and for the
        socket alone (poll, not select: a worker may hold more than 1,024
        file descriptors)."""
        if self._polled is None or self._polled[0] is not sock:
            both, alone = select.poll(), select.poll()
            for poll in (both, alone):
                poll.register(sock, select.POLLIN)
            both.register(self.acks.waker, select.POLLIN)
            self._polled = (sock, both, alone)
        return self._polled[1], self._polled[2]

    def _wait(self, timeout: float) -> None:
        connection = self._link.connection
        sock = connection.sock
        if sock is None:
            raise ConnectionError("the connection's socket is closed")
        both, alone = self._polls(sock)
        ready = {fd for fd, _ in both.poll(timeout * 1000)}
        if self.acks.waker.fileno() in ready:
            self.acks.woke()
        if sock.fileno() not in ready:
            return
        handled = 0
        while handled < FRAMES_PER_TURN:
            handled += read_ready(connection)
            if not alone.poll(0):
                return

    def _lost(self, exc: BaseException) -> None:
        LOG.warning(
            "%s: lost the connection to the broker (%s: %s)%s. What it "
            "delivered unacknowledged comes back from the broker.",
            self._name,
            type(exc).__name__,
            exc,
            "" if self._shutdown.is_set() else "; reconnecting",
        )
        self._link.drop()
        self._tags.clear()
        self._incoming.clear()
        self.acks.send(None)  # every one is stale now: counted and dropped

    def _quiesce(self) -> None:
        """On the poller's thread at stop: cancel the consumers, so that the
        broker sends nothing more."""
        try:
            if self._link.channel is not None:
                for tag in list(self._tags):
                    self._link.channel.basic_cancel(tag)
                self.acks.send(self._link.channel)
        except LOST as exc:
            self._lost(exc)
        self._tags.clear()
        self._incoming.clear()
        self._shutoff.set()

    def _keep(self) -> None:
        while not self._closing.is_set():
            self._turn(self._settings.tick, consume=False)
