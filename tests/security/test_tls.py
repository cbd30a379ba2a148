"""TLS to RabbitMQ: a private node with only a TLS listener and a test CA.
The worker serves over TLS and volworker-client reaches it, both configured
with oslo.messaging's ``[oslo_messaging_rabbit] ssl`` options as README
shows; a plain AMQP connection to that listener fails."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Iterator

import kombu
import pytest

from tests.functional.test_client import client, ok
from tests.security.conftest import require_private_broker
from tests.security.tls import Authority, TLSBroker, make_ca
from volworker.testing.worker import Worker


@pytest.fixture
def ca(tmp_path: pathlib.Path) -> Authority:
    return make_ca(tmp_path / "ca")


@pytest.fixture
def tls_broker(tmp_path: pathlib.Path, ca: Authority) -> Iterator[TLSBroker]:
    require_private_broker()
    node = TLSBroker(tmp_path / "rabbitmq", ca)
    node.start()
    try:
        yield node
    finally:
        node.shutdown()


def test_the_worker_serves_over_tls_only(
    tls_broker: TLSBroker, ca: Authority, make_worker: Callable[..., Worker]
) -> None:
    worker = make_worker(
        {"fake1": {"volume_driver": "fake"}},
        defaults={"transport_url": tls_broker.url},
        extra={"oslo_messaging_rabbit": {"ssl": True, "ssl_ca_file": ca.ca}},
    )
    worker.start().wait_ready(60)
    # The client reads the broker, its TLS settings and the server from the
    # worker's own configuration file.
    run = ("--config-file", str(worker.config), "--format", "json")
    record = json.loads(ok(client(*run, "create", "--wait")))
    assert record["status"] == "available"
    listed = json.loads(ok(client(*run, "list")))
    assert [v["id"] for v in listed] == [record["id"]]

    plain = kombu.Connection(tls_broker.amqp_url, connect_timeout=5)
    with pytest.raises(Exception):  # noqa: B017 - any failure to talk AMQP in clear
        plain.connect()
    plain.release()
    assert worker.stop() == 0
