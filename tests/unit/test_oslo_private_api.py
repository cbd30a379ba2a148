"""oslo.messaging's private names that volworker.rpc._amqp relies on.

An oslo.messaging release that renames or drops one of them must fail here,
in CI, and not in a worker in production.
"""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import oslo_messaging
import pytest
from oslo_config import cfg

from tests.conftest import require_service
from volworker.rpc import _amqp
from volworker.testing.worker import RABBIT_URL

CLASSES = {"AMQPDriverBase", "AMQPListener", "RpcAMQPListener", "AMQPIncomingMessage"}


def _instance_attributes(kind: str) -> tuple[str, ...]:
    return _amqp.PRIVATE_API[f"{kind} instance"]


def test_private_modules_and_classes_exist() -> None:
    amqpdriver = importlib.import_module("oslo_messaging._drivers.amqpdriver")
    for key, names in _amqp.PRIVATE_API.items():
        if key.endswith(" instance"):
            continue
        owner = (
            getattr(amqpdriver, key) if key in CLASSES else importlib.import_module(key)
        )
        missing = [name for name in names if not hasattr(owner, name)]
        assert not missing, f"oslo.messaging's {key} has no {missing}"


@pytest.fixture
def transport() -> Iterator[oslo_messaging.Transport]:
    require_service("rabbitmq", 5672)
    # The global CONF: oslo.messaging registers some options only there.
    found = oslo_messaging.get_rpc_transport(cfg.CONF, url=RABBIT_URL)
    yield found
    found.cleanup()


def _delivered(listener: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = listener.poll_batch(0.5, 1)
        if batch:
            return batch[0]
    raise AssertionError("the cast never arrived")


def _stop_while_polling(listener: Any) -> None:
    """Stop a listener the way its server does: from another thread while
    the listener's own thread polls."""

    def poll() -> None:
        while not listener.stopped:
            listener.poll(timeout=0.2)

    poller = threading.Thread(target=poll)
    poller.start()
    listener.stop()
    poller.join(10)
    assert not poller.is_alive()
    assert listener.stopped


def test_instances_carry_the_private_attributes(
    transport: oslo_messaging.Transport,
) -> None:
    for name in _instance_attributes("Transport"):
        assert hasattr(transport, name), f"a Transport has no {name}"
    topic = f"vwtest-private-{uuid.uuid4().hex[:8]}"
    listener = _amqp.open_listener(transport, topic, ["h@b"])
    try:
        for name in _instance_attributes("AMQPListener"):
            assert hasattr(listener, name), f"an AMQPListener has no {name}"
        for name in _instance_attributes("Connection"):
            assert hasattr(listener.conn, name), f"a connection has no {name}"
        for name in _instance_attributes("ConnectionContext"):
            assert hasattr(listener.conn, name), f"a connection context has no {name}"
        for name in _instance_attributes("RabbitConnection"):
            assert hasattr(listener.conn.connection, name), f"rabbit has no {name}"
        client = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(topic=topic, server="h@b")
        )
        client.cast({}, "ping", n=1)
        delivery = _delivered(listener)
        for name in _instance_attributes("AMQPIncomingMessage"):
            assert hasattr(delivery, name), f"an incoming message has no {name}"
        assert delivery.message["method"] == "ping"
        delivery.acknowledge()
        _stop_while_polling(listener)
    finally:
        listener.close()
    fanout = _amqp.open_fanout_listener(transport, topic)
    _stop_while_polling(fanout)
    fanout.cleanup()
