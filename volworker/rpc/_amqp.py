"""An RPC listener that acknowledges a cast only when the worker says so.

oslo.messaging's RPC listener acknowledges every request the moment it
arrives, before it is dispatched, and its server keeps an unbounded backlog
in memory: a process killed with work queued loses all of it. volworker
instead acknowledges a cast once the cast is in its journal, so what the
worker has not journaled stays on the broker and is delivered again after a
crash.

This is the one module that reaches into oslo.messaging's AMQP driver
(private API): it reuses the driver's connection, consumers, reply and
reconnect logic and changes only when the acknowledgement happens. It also
opens the fanout-only listener a scheduler uses (:mod:`volworker.scheduler`),
which oslo has no public API for. Every private name used here is listed in
:data:`PRIVATE_API`; a unit test fails when an oslo.messaging release drops
one, so an upgrade breaks in CI, not in production.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import amqp.exceptions
import oslo_messaging
from oslo_config import cfg
from oslo_messaging._drivers import amqp as rpc_amqp
from oslo_messaging._drivers import amqpdriver, impl_rabbit
from oslo_messaging._drivers import common as rpc_common

__all__ = [
    "PRIVATE_API",
    "RABBIT_GROUP",
    "Delivery",
    "FanoutListener",
    "Listener",
    "declare_exchange_durable",
    "open_fanout_listener",
    "open_listener",
    "rabbit_opts",
]

LOG = logging.getLogger(__name__)

#: oslo.messaging's private names this module relies on: (object, attribute)
#: for classes and modules, and the attributes their instances carry.
PRIVATE_API: dict[str, tuple[str, ...]] = {
    "oslo_messaging._drivers.common": ("PURPOSE_LISTEN",),
    "oslo_messaging._drivers.impl_rabbit": ("rabbit_opts",),
    "oslo_messaging._drivers.amqp": ("amqp_opts",),
    "oslo_messaging._drivers.amqpdriver": (
        "AMQPDriverBase",
        "AMQPIncomingMessage",
        "AMQPListener",
        "RpcAMQPListener",
    ),
    "AMQPDriverBase": ("_get_connection", "_get_exchange"),
    "AMQPListener": ("__call__", "poll", "stop", "cleanup", "use_cache"),
    "RpcAMQPListener": ("message_cls",),
    "AMQPIncomingMessage": ("acknowledge", "reply"),
    # set on instances: a transport, a listener, a connection, a message
    "Transport instance": ("_driver",),
    "AMQPListener instance": ("_shutoff", "incoming", "_message_operations_handler"),
    "Connection instance": ("declare_topic_consumer", "declare_fanout_consumer"),
    # the pool's wrapper of a listener connection, and the rabbit one in it
    "ConnectionContext instance": ("connection",),
    "RabbitConnection instance": (
        "rabbit_qos_prefetch_count",
        "channel",
        "_set_qos",
        "connection",
        "amqp_auto_delete",
    ),
    "AMQPIncomingMessage instance": (
        "message",
        "ctxt",
        "msg_id",
        "orig_msg_id",
        "unique_id",
        "_message_operations_handler",
    ),
}


class Delivery(amqpdriver.AMQPIncomingMessage):
    """One request off the queue; ``acknowledge()`` really acknowledges it.

    kombu is not thread-safe, so the acknowledgement is handed to the
    listener's consumer thread, which sends it on its next turn.
    """

    #: oslo's reply() publishes and waits for the broker's confirm
    reply_waits = True

    def acknowledge(self) -> None:
        raw = self.message

        def _ack() -> None:
            try:
                raw.acknowledge()
            except Exception as exc:
                # The channel went away (a broker outage); the broker
                # redelivers the message and the journal drops the copy.
                LOG.warning("Could not acknowledge message %s: %s", self.unique_id, exc)

        self._message_operations_handler.do(_ack)

    @property
    def is_call(self) -> bool:
        """Whether the sender waits for a reply."""
        # Oslo gives every incoming message a msg_id, made up when the
        # sender sent none; only the original one means a reply is awaited.
        return bool(self.orig_msg_id)


class Listener(amqpdriver.AMQPListener):
    """The AMQP listener without acknowledge-on-arrival.

    Duplicates are not dropped by an in-memory cache either: after a
    reconnect the broker redelivers what was not acknowledged, and the
    journal, which outlives the process, decides what is a duplicate.
    """

    message_cls = Delivery
    use_cache = False

    def poll_batch(self, timeout: float, batch_size: int) -> list[Delivery]:
        """The requests at hand (up to ``batch_size``), waiting at most
        ``timeout`` seconds for the first one."""
        # Oslo's batch polling waits for a full batch or the timeout;
        # take one, then only what has already arrived.
        batch = list(self.poll(timeout=timeout, batch_size=1))
        while batch and len(batch) < batch_size and self.incoming:
            batch.extend(self.poll(timeout=0, batch_size=1))
        return batch

    @property
    def stopped(self) -> bool:
        """Whether stop() has taken effect and nothing is left to poll."""
        return bool(self._shutoff.is_set())

    def close(self) -> None:
        """Send the acknowledgements still queued, then close the connection.

        What was received but never acknowledged returns to its queue.
        """
        self._message_operations_handler.process()
        self.cleanup()


class FanoutListener(amqpdriver.RpcAMQPListener):
    """oslo's RPC listener, bound to nothing but one topic's fanout."""

    @property
    def stopped(self) -> bool:
        return bool(self._shutoff.is_set())


def _amqp_driver(transport: oslo_messaging.Transport) -> Any:
    driver: Any = transport._driver
    if not isinstance(driver, amqpdriver.AMQPDriverBase):
        raise TypeError(
            "volworker needs an AMQP (rabbit://) transport, not "
            f"{type(driver).__name__}"
        )
    return driver


#: The configuration group of oslo.messaging's RabbitMQ driver.
RABBIT_GROUP = "oslo_messaging_rabbit"


def rabbit_opts() -> list[cfg.Opt]:
    """The option objects of the ``[oslo_messaging_rabbit]`` group, as the
    driver registers them (what the sample config lists)."""
    return [*impl_rabbit.rabbit_opts, *rpc_amqp.amqp_opts]


def declare_exchange_durable(transport: oslo_messaging.Transport) -> bool:
    """Declare the transport's control exchange durable, on a connection of
    its own; False when it exists already, transient.

    oslo.messaging, asked for durable queues on a transient exchange, falls
    back to transient queues with only a warning, and its notifier then
    fails: the worker asks first, plainly.
    """
    driver = _amqp_driver(transport)
    exchange = driver._get_exchange(oslo_messaging.Target(topic="probe"))
    with driver._get_connection(rpc_common.PURPOSE_LISTEN) as conn:
        rabbit = conn.connection
        channel = rabbit.connection.channel()
        try:
            channel.exchange_declare(
                exchange, "topic", durable=True, auto_delete=rabbit.amqp_auto_delete
            )
        except amqp.exceptions.PreconditionFailed as exc:
            if "'durable'" not in str(exc):
                raise
            return False
        channel.close()
    return True


def open_fanout_listener(
    transport: oslo_messaging.Transport, topic: str
) -> FanoutListener:
    """Consume only ``topic``'s fanout, on a queue of this listener's own.

    oslo.messaging's RPC server would also consume the topic's shared queue
    and take requests meant for others; it has no fanout-only listener.
    """
    driver = _amqp_driver(transport)
    conn = driver._get_connection(rpc_common.PURPOSE_LISTEN)
    listener = FanoutListener(driver, conn)
    conn.declare_fanout_consumer(topic, listener)
    return listener


def _set_prefetch(conn: Any, count: int) -> None:
    """At most ``count`` unacknowledged messages per queue on ``conn``.

    oslo.messaging's ``rabbit_qos_prefetch_count`` is one value for every
    listener of a transport; this is one listener's own, kept on its
    connection, which applies it again to each channel after a reconnect.
    """
    rabbit = conn.connection
    rabbit.rabbit_qos_prefetch_count = count
    rabbit._set_qos(rabbit.channel)


def open_listener(
    transport: oslo_messaging.Transport,
    topic: str,
    servers: Sequence[str],
    prefetch: int = 0,
) -> Listener:
    """Consume ``topic``, ``topic.<server>`` for each server, and the fanout;
    with ``prefetch``, at most that many unacknowledged messages per queue.

    The queues are those oslo.messaging's own RPC server declares for
    ``Target(topic, server)``, so any oslo.messaging client reaches them.
    """
    driver = _amqp_driver(transport)
    conn = driver._get_connection(rpc_common.PURPOSE_LISTEN)
    if prefetch > 0:
        # Before any consumer exists: RabbitMQ applies a prefetch to the
        # consumers a channel starts after it.
        _set_prefetch(conn, prefetch)
    listener = Listener(driver, conn)
    exchange = driver._get_exchange(oslo_messaging.Target(topic=topic))
    conn.declare_topic_consumer(exchange_name=exchange, topic=topic, callback=listener)
    for server in servers:
        conn.declare_topic_consumer(
            exchange_name=exchange, topic=f"{topic}.{server}", callback=listener
        )
    conn.declare_fanout_consumer(topic, listener)
    return listener
