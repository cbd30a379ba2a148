"""Durable queues by default: what waits on the broker survives its restart.

The worker takes from its queues only what it can journal and run soon
(bounded intake), so a backlog waits on the broker. oslo.messaging declares
transient queues unless told otherwise, and a broker restart deletes them
with every request in them. The worker, ``volworker-client`` and
:class:`~volworker.rpc.rpcapi.VolumeAPI` therefore default to
``[oslo_messaging_rabbit] amqp_durable_queues = true``: durable queues, and
the control exchange they are bound to declared durable.

RabbitMQ keeps an exchange as whoever declared it first made it, and every
user of one virtual host shares its control exchange (``openstack``): a
durable declaration of a transient exchange fails. When the exchange exists
transient already (devstack, where every service is transient), the worker
follows it with a warning, unless durability was set explicitly in the
configuration: then it refuses to start rather than lose queued requests
quietly.
"""

from __future__ import annotations

import logging

import oslo_messaging
from oslo_config import cfg

from volworker.rpc import _amqp

__all__ = ["DEFAULTS", "apply_defaults", "sample_defaults", "settle"]

LOG = logging.getLogger(__name__)

#: volworker's defaults for oslo.messaging's RabbitMQ options.
DEFAULTS = {"amqp_durable_queues": True}

_DURABILITY = ("amqp_durable_queues", "rabbit_quorum_queue")
_EXPLICIT = frozenset(
    {cfg.Locations.user, cfg.Locations.command_line, cfg.Locations.environment}
)


def apply_defaults(conf: cfg.ConfigOpts) -> None:
    """Make volworker's defaults those of ``conf`` (what a configuration
    file or the command line sets still wins)."""
    conf.register_opts(_amqp.rabbit_opts(), group=_amqp.RABBIT_GROUP)
    for name, value in DEFAULTS.items():
        conf.set_default(name, value, group=_amqp.RABBIT_GROUP)


def sample_defaults() -> None:
    """For ``oslo-config-generator``: the sample shows volworker's defaults
    in the ``[oslo_messaging_rabbit]`` section it takes from oslo.messaging."""
    cfg.set_defaults(_amqp.rabbit_opts(), **DEFAULTS)


def _explicit(conf: cfg.ConfigOpts) -> bool:
    """Whether an operator chose durability (rather than the default)."""
    for name in _DURABILITY:
        where = conf.get_location(name, _amqp.RABBIT_GROUP)
        if where is not None and where.location in _EXPLICIT:
            return True
    return False


def settle(conf: cfg.ConfigOpts, transport: oslo_messaging.Transport) -> None:
    """Before the worker declares its queues: make sure they can be as
    durable as configured, or follow a transient exchange (see above)."""
    rabbit = conf[_amqp.RABBIT_GROUP]
    if not any(rabbit[name] for name in _DURABILITY):
        return
    if _amqp.declare_exchange_durable(transport):
        return
    exchange = conf.control_exchange
    if _explicit(conf):
        raise RuntimeError(
            f"the broker's exchange {exchange!r} is not durable, so durable "
            f"queues cannot be bound to it; make it durable (every service of "
            f"the virtual host sets [{_amqp.RABBIT_GROUP}] amqp_durable_queues "
            f"= true) or give volworker a virtual host of its own"
        )
    LOG.warning(
        "The broker's exchange %r is not durable (another service declared "
        "it so): volworker's queues are transient too, and a broker restart "
        "loses the requests waiting in them. Set [%s] amqp_durable_queues = "
        "true on every service of this virtual host, or give volworker one of "
        "its own.",
        exchange,
        _amqp.RABBIT_GROUP,
    )
    for name in _DURABILITY:
        conf.set_override(name, False, group=_amqp.RABBIT_GROUP)
