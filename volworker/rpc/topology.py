"""The exchanges and queues oslo.messaging's RPC server consumes for a
topic and its servers, as its rabbit driver declares them.

RabbitMQ refuses to declare again an exchange or a queue with other
properties than it has, so the kombu intake declares exactly these, and
either intake (or oslo's own server) can consume them after the other:

- the control exchange (``control_exchange``, topic type), durable with
  ``amqp_durable_queues``, auto-deleted with ``amqp_auto_delete``;
- a queue ``<topic>`` and one ``<topic>.<server>`` per server, bound to it
  under their own names, with the exchange's durability and auto-delete;
- the fanout exchange ``<topic>_fanout`` (transient, auto-deleted) and a
  queue of this consumer's own, ``<topic>_fanout_<uuid hex>``, transient,
  expiring ``rabbit_transient_queues_ttl`` seconds after its consumer left.

``rabbit_ha_queues`` adds ``x-ha-policy: all`` to every queue. Quorum and
stream queues are not described here: the kombu intake leaves them to
oslo's listener.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

__all__ = ["Binding", "declare", "rpc_bindings"]


@dataclasses.dataclass(frozen=True)
class Binding:
    """A queue, the exchange it is bound to, and how both are declared."""

    queue: str
    exchange: str
    exchange_type: str
    routing_key: str
    durable: bool
    auto_delete: bool
    exchange_durable: bool
    exchange_auto_delete: bool
    arguments: dict[str, Any]


def rpc_bindings(
    rabbit: Any, control_exchange: str, topic: str, servers: Sequence[str]
) -> list[Binding]:
    """What oslo's RPC server declares for ``topic`` and each of
    ``servers``; ``rabbit`` is the ``[oslo_messaging_rabbit]`` group."""
    ha = {"x-ha-policy": "all"} if rabbit.rabbit_ha_queues else {}
    durable, auto_delete = bool(rabbit.amqp_durable_queues), rabbit.amqp_auto_delete
    found = [
        Binding(
            queue=name,
            exchange=control_exchange,
            exchange_type="topic",
            routing_key=name,
            durable=durable,
            auto_delete=auto_delete,
            exchange_durable=durable,
            exchange_auto_delete=auto_delete,
            arguments=dict(ha),
        )
        for name in [topic, *(f"{topic}.{server}" for server in servers)]
    ]
    ttl = rabbit.rabbit_transient_queues_ttl
    found.append(
        Binding(
            queue=f"{topic}_fanout_{uuid.uuid4().hex}",
            exchange=f"{topic}_fanout",
            exchange_type="fanout",
            routing_key=topic,
            durable=False,
            auto_delete=False,
            exchange_durable=False,
            exchange_auto_delete=True,
            arguments={**ha, **({"x-expires": ttl * 1000} if ttl > 0 else {})},
        )
    )
    return found


def declare(channel: Any, binding: Binding) -> None:
    """Declare ``binding``'s exchange and queue and bind them, on a py-amqp
    channel."""
    channel.exchange_declare(
        binding.exchange,
        binding.exchange_type,
        durable=binding.exchange_durable,
        auto_delete=binding.exchange_auto_delete,
    )
    channel.queue_declare(
        binding.queue,
        durable=binding.durable,
        auto_delete=binding.auto_delete,
        arguments=binding.arguments or None,
    )
    channel.queue_bind(binding.queue, binding.exchange, routing_key=binding.routing_key)
