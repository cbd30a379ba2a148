"""What the kombu intake reads from the configuration, and what it leaves
to oslo.messaging's listener.

The intake follows oslo's ``[oslo_messaging_rabbit]`` options, so that
switching ``rpc_intake`` changes nothing on the broker: its connections are
made as oslo's driver makes them (``volworker/broker.py``: every host of
``transport_url``, login method, failover strategy, heartbeat), and it
declares the same queues (``topology.py``), backs off as oslo does between
reconnects and waits as long for a caller's missing reply queue.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import kombu
from oslo_config import cfg

from volworker import broker
from volworker.rpc.topology import Binding, rpc_bindings

__all__ = ["Settings", "unsupported"]

#: options the intake does not implement -> what to call them in a warning
_NOT_HERE = {
    "rabbit_transient_quorum_queue": "quorum fanout queues "
    "(rabbit_transient_quorum_queue)",
    # poll() on the socket does not see what TLS has decrypted and buffered
    "ssl": "TLS to the broker ([oslo_messaging_rabbit] ssl)",
    "use_queue_manager": "named fanout queues (use_queue_manager)",
}


def unsupported(conf: cfg.ConfigOpts) -> str | None:
    """Why the kombu intake cannot serve this configuration; None if it can."""
    why = broker.unsupported(conf, conf.transport_url)
    if why is not None:
        return why
    rabbit = conf[broker.RABBIT]
    return next((what for name, what in _NOT_HERE.items() if rabbit[name]), None)


@dataclasses.dataclass(frozen=True)
class Settings:
    #: makes a connection (not yet connected) for a role: ``rpc-intake:…``
    connection: Callable[[str], kombu.Connection]
    #: how many hosts the URL names (one reconnect attempt tries each)
    hosts: int
    bindings: list[Binding]
    prefetch: int
    heartbeat: int
    heartbeat_rate: int
    retry_interval: float
    retry_step: float
    retry_max: float
    consumer_arguments: dict[str, Any] | None
    missing_queue_timeout: float

    @property
    def tick(self) -> float:
        """The longest wait between two heartbeat checks."""
        if self.heartbeat <= 0:
            return 1.0
        return min(1.0, self.heartbeat / self.heartbeat_rate / 2)

    @classmethod
    def from_conf(
        cls, conf: cfg.ConfigOpts, topic: str, servers: Sequence[str], prefetch: int
    ) -> Settings:
        rabbit = conf[broker.RABBIT]
        url = conf.transport_url
        return cls(
            connection=functools.partial(broker.connection, conf, url),
            hosts=broker.kombu_url(conf, url).count(";") + 1,
            bindings=rpc_bindings(rabbit, conf.control_exchange, topic, servers),
            prefetch=prefetch,
            heartbeat=rabbit.heartbeat_timeout_threshold,
            heartbeat_rate=max(1, rabbit.heartbeat_rate),
            retry_interval=float(rabbit.rabbit_retry_interval),
            retry_step=float(rabbit.rabbit_retry_backoff),
            retry_max=float(rabbit.rabbit_interval_max),
            consumer_arguments=(
                {"x-cancel-on-ha-failover": True}
                if rabbit.enable_cancel_on_failover
                else None
            ),
            missing_queue_timeout=float(rabbit.kombu_missing_consumer_retry_timeout),
        )
