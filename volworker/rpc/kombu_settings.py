"""What the kombu intake reads from the configuration, and what it leaves
to oslo.messaging's listener.

The intake follows oslo's ``[oslo_messaging_rabbit]`` options, so that
switching ``rpc_intake`` changes nothing on the broker: the same queues
(``topology.py``), heartbeats, reconnect back-off, failover between the
hosts of ``transport_url`` and wait for a caller's missing reply queue.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import oslo_messaging
from oslo_config import cfg

from volworker.broker import kombu_url
from volworker.rpc.topology import Binding, rpc_bindings

__all__ = ["Settings", "unsupported"]

RABBIT_GROUP = "oslo_messaging_rabbit"

#: options the intake does not implement -> what to call them in a warning
_NOT_HERE = {
    "rabbit_quorum_queue": "quorum queues (rabbit_quorum_queue)",
    "rabbit_transient_quorum_queue": "quorum fanout queues "
    "(rabbit_transient_quorum_queue)",
    "rabbit_stream_fanout": "stream fanout queues (rabbit_stream_fanout)",
    "ssl": "TLS to the broker ([oslo_messaging_rabbit] ssl)",
    "use_queue_manager": "named fanout queues (use_queue_manager)",
}


def unsupported(conf: cfg.ConfigOpts) -> str | None:
    """Why the kombu intake cannot serve this configuration; None if it can."""
    transport = oslo_messaging.TransportURL.parse(conf, conf.transport_url).transport
    if transport not in ("rabbit", "kombu"):
        return f"the {transport}:// transport"
    rabbit = conf[RABBIT_GROUP]
    for name, what in _NOT_HERE.items():
        if rabbit[name]:
            return what
    return None


@dataclasses.dataclass(frozen=True)
class Settings:
    url: str
    #: how many hosts the URL names (one reconnect attempt tries each)
    hosts: int
    bindings: list[Binding]
    prefetch: int
    login_method: str
    heartbeat: int
    heartbeat_rate: int
    failover_strategy: str
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
        rabbit = conf[RABBIT_GROUP]
        url = kombu_url(conf, conf.transport_url)
        return cls(
            url=url,
            hosts=max(1, url.count(";") + 1),
            bindings=rpc_bindings(rabbit, conf.control_exchange, topic, servers),
            prefetch=prefetch,
            login_method=rabbit.rabbit_login_method,
            heartbeat=rabbit.heartbeat_timeout_threshold,
            heartbeat_rate=max(1, rabbit.heartbeat_rate),
            failover_strategy=rabbit.kombu_failover_strategy,
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
