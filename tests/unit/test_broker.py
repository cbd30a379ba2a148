"""kombu connections read oslo.messaging's rabbit configuration as its
driver does, without a broker."""

from __future__ import annotations

import os
import ssl

import pytest
from oslo_config import cfg

from volworker import broker
from volworker.rpc import queues


@pytest.fixture
def conf() -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    queues.apply_defaults(conf)
    conf([])
    return conf


def _rabbit(conf: cfg.ConfigOpts, **values: object) -> None:
    for name, value in values.items():
        conf.set_override(name, value, group=broker.RABBIT)


def test_kombu_url_keeps_every_host_and_quotes_credentials(
    conf: cfg.ConfigOpts,
) -> None:
    url = "rabbit://u:p%40ss@h1:5672,u:p%40ss@h2:5673/v%2Fh"
    assert broker.kombu_url(conf, url) == (
        "amqp://u:p%40ss@h1:5672/v%2Fh;amqp://u:p%40ss@h2:5673/v%2Fh"
    )


def test_kombu_url_defaults_as_oslo_and_brackets_ipv6(conf: cfg.ConfigOpts) -> None:
    assert broker.kombu_url(conf, "rabbit://") == "amqp://guest:guest@localhost:5672/"
    assert broker.kombu_url(conf, "rabbit://u:p@[::1]:5673/") == (
        "amqp://u:p@[::1]:5673/"
    )


def test_without_tls_no_ssl_options(conf: cfg.ConfigOpts) -> None:
    assert broker.ssl_options(conf, "rabbit://h/") is False


def test_tls_without_a_ca_does_not_check_the_server(conf: cfg.ConfigOpts) -> None:
    _rabbit(conf, ssl=True)
    assert broker.ssl_options(conf, "rabbit://h/") is True


def test_tls_with_a_ca_checks_the_single_hosts_name(conf: cfg.ConfigOpts) -> None:
    _rabbit(
        conf,
        ssl=True,
        ssl_ca_file="/etc/ca.pem",
        ssl_cert_file="/etc/c.pem",
        ssl_key_file="/etc/k.pem",
        ssl_version="TLSv1_2",
    )
    assert broker.ssl_options(conf, "rabbit://u:p@mq.example:5671/") == {
        "ca_certs": "/etc/ca.pem",
        "cert_reqs": ssl.CERT_REQUIRED,
        "certfile": "/etc/c.pem",
        "keyfile": "/etc/k.pem",
        "server_hostname": "mq.example",
        "ssl_version": ssl.PROTOCOL_TLSv1_2,
    }
    several = broker.ssl_options(conf, "rabbit://u:p@a:5671,u:p@b:5671/")
    assert isinstance(several, dict) and several["server_hostname"] is None


def test_an_unknown_tls_version_is_named(conf: cfg.ConfigOpts) -> None:
    _rabbit(conf, ssl=True, ssl_version="tls9")
    with pytest.raises(ValueError, match="ssl_version 'tls9'"):
        broker.ssl_options(conf, "rabbit://h/")


def test_what_only_oslo_handles_is_named(conf: cfg.ConfigOpts) -> None:
    assert broker.unsupported(conf, "rabbit://h/") is None
    assert "kafka://" in str(broker.unsupported(conf, "kafka://h:9092/"))
    _rabbit(conf, rabbit_quorum_queue=True)
    assert "quorum" in str(broker.unsupported(conf, "rabbit://h/"))


def test_the_connection_follows_the_rabbit_options(conf: cfg.ConfigOpts) -> None:
    _rabbit(
        conf,
        rabbit_login_method="PLAIN",
        heartbeat_timeout_threshold=17,
        kombu_failover_strategy="shuffle",
    )
    conn = broker.connection(conf, "rabbit://u:p@h1:5672,u:p@h2:5672/", "notify")
    assert conn.login_method == "PLAIN"
    assert conn.heartbeat == 17
    assert len(conn.alt) == 2 and conn.hostname in ("h1", "h2")
    name = conn.transport_options["client_properties"]["connection_name"]
    assert name.endswith(f":{os.getpid()}:notify")
    quiet = broker.connection(conf, "rabbit://h/", "notify", heartbeat=False)
    assert quiet.heartbeat == 0
