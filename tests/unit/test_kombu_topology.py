"""The kombu intake declares what oslo.messaging's listener declares: either
may declare the queues first and the other consume them (RabbitMQ refuses
a declaration that differs from what exists), and their fanout queues,
named apart, are alike. What it does not implement, it leaves to oslo's."""

from __future__ import annotations

import logging
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import kombu
import oslo_messaging
import oslo_messaging.opts
import pytest
from oslo_config import cfg

from tests.conftest import require_service, require_tool
from volworker.rpc import _amqp, queues
from volworker.rpc.kombu_intake import KombuIntake
from volworker.rpc.kombu_settings import Settings, unsupported
from volworker.testing.listen import BROKER, VHOST
from volworker.testing.worker import RABBIT_URL

SERVERS = ["h@b1", "c@b1"]
COLUMNS = ("name", "durable", "auto_delete", "arguments")


@pytest.fixture(params=[False, True], ids=["transient", "durable"])
def conf(request: pytest.FixtureRequest) -> Iterator[cfg.ConfigOpts]:
    """The global CONF (oslo.messaging needs it) on a control exchange of
    the test's own, so the shared ``openstack`` exchange's durability does
    not decide."""
    require_service("rabbitmq", 5672)
    conf = cfg.CONF
    for group, opts in oslo_messaging.opts.list_opts():
        conf.register_opts(opts, group=group)
    queues.apply_defaults(conf)
    exchange = f"vwtest-x-{uuid.uuid4().hex[:8]}"
    overrides: dict[str, Any] = {
        "transport_url": RABBIT_URL,
        "control_exchange": exchange,
    }
    for name, value in overrides.items():
        conf.set_override(name, value)
    conf.set_override("amqp_durable_queues", request.param, group=_amqp.RABBIT_GROUP)
    yield conf
    for name in overrides:
        conf.clear_override(name)
    conf.clear_override("amqp_durable_queues", group=_amqp.RABBIT_GROUP)
    with kombu.Connection(BROKER) as conn:
        conn.default_channel.exchange_delete(exchange)


def _queues(topic: str) -> dict[str, tuple[str, ...]]:
    """The broker's queues of ``topic``: name -> durable, auto_delete,
    arguments."""
    ctl = require_tool("rabbitmqctl", "rabbitmq-server")
    listed = subprocess.run(
        [ctl, "-q", "list_queues", "-p", VHOST or "/", *COLUMNS],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = [line.split("\t") for line in listed.splitlines()]
    return {row[0]: tuple(row[1:]) for row in rows if row[0].startswith(topic)}


def _delete(names: list[str]) -> None:
    with kombu.Connection(BROKER) as conn:
        for name in names:
            conn.default_channel.queue_delete(name)


@pytest.mark.parametrize("first", ["oslo", "kombu"])
def test_either_declares_first_and_the_other_follows(
    conf: cfg.ConfigOpts, first: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"vwtest-topo-{uuid.uuid4().hex[:8]}"
    transport = oslo_messaging.get_rpc_transport(conf)
    opened: list[Any] = []

    def oslo() -> None:
        opened.append(_amqp.open_listener(transport, topic, SERVERS, prefetch=4))

    def ours() -> None:
        settings = Settings.from_conf(conf, topic, SERVERS, prefetch=4)
        opened.append(KombuIntake(settings, SERVERS[0]).open())

    try:
        with caplog.at_level(logging.WARNING):
            for declare in (oslo, ours) if first == "oslo" else (ours, oslo):
                declare()
        # oslo's listener falls back to transient queues, with a warning,
        # where it finds a durability other than its own
        assert "conflicting configurations" not in caplog.text
        found = _queues(topic)
        fanouts = [v for k, v in found.items() if k.startswith(f"{topic}_fanout_")]
        assert len(fanouts) == 2 and fanouts[0] == fanouts[1], found
        durable = str(conf.oslo_messaging_rabbit.amqp_durable_queues).lower()
        assert found[topic][0] == durable
        assert all(found[f"{topic}.{s}"] == found[topic] for s in SERVERS)
    finally:
        for listener in opened:
            listener.close()
        transport.cleanup()
        _delete(list(_queues(topic)))


@pytest.mark.parametrize(
    ("option", "url", "reason"),
    [
        ("rabbit_quorum_queue", RABBIT_URL, "quorum queues"),
        ("rabbit_transient_quorum_queue", RABBIT_URL, "quorum fanout queues"),
        ("rabbit_stream_fanout", RABBIT_URL, "stream fanouts"),
        ("ssl", RABBIT_URL, "TLS"),
        ("use_queue_manager", RABBIT_URL, "use_queue_manager"),
        (None, "kafka://127.0.0.1:9092/", "kafka://"),
        (None, RABBIT_URL, None),
    ],
)
def test_what_it_leaves_to_oslos_listener(
    option: str | None, url: str, reason: str | None
) -> None:
    conf = cfg.ConfigOpts()
    for group, opts in oslo_messaging.opts.list_opts():
        conf.register_opts(opts, group=group)
    conf([])
    conf.set_override("transport_url", url)
    if option:
        conf.set_override(option, True, group=_amqp.RABBIT_GROUP)
    found = unsupported(conf)
    assert found == reason if reason is None else reason in str(found)
