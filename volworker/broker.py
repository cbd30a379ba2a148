"""kombu connections to the broker, made as oslo.messaging's driver makes them.

Where volworker talks to RabbitMQ with kombu itself (the notification
publisher), it reads the same configuration as oslo.messaging's
``rabbit://`` driver: every host of the transport URL for failover, the
``[oslo_messaging_rabbit]`` login method, failover strategy, TLS settings and
heartbeat, and it names its connection so that ``rabbitmqctl
list_connections user_provided_name`` tells which process and role it is.

What kombu alone cannot do the way oslo does it (quorum queues, stream
fanouts, transports other than RabbitMQ) is reported by :func:`unsupported`,
and the caller falls back to oslo.messaging.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.parse
from typing import Any

import kombu
import oslo_messaging
from oslo_config import cfg

__all__ = ["connection", "kombu_url", "ssl_options", "unsupported"]

RABBIT = "oslo_messaging_rabbit"
_SSL_VERSIONS = {
    "tlsv1": "PROTOCOL_TLSv1",
    "tlsv1_1": "PROTOCOL_TLSv1_1",
    "tlsv1_2": "PROTOCOL_TLSv1_2",
    "sslv23": "PROTOCOL_SSLv23",
}


def unsupported(conf: cfg.ConfigOpts, url: str | None) -> str | None:
    """Why kombu cannot speak for oslo.messaging here, or None if it can."""
    parsed = oslo_messaging.TransportURL.parse(conf, url)
    if parsed.transport not in ("rabbit", "amqp"):
        return f"the transport is {parsed.transport}://, not rabbit://"
    rabbit = conf[RABBIT]
    if rabbit.rabbit_quorum_queue or rabbit.rabbit_stream_fanout:
        return "quorum queues and stream fanouts are declared by oslo.messaging only"
    return None


def kombu_url(conf: cfg.ConfigOpts, url: str | None) -> str:
    """oslo's ``rabbit://`` transport URL as kombu's, every host kept for
    failover (oslo's defaults when it names none)."""
    parsed = oslo_messaging.TransportURL.parse(conf, url)
    vhost = urllib.parse.quote(parsed.virtual_host or "", safe="")
    hosts = []
    for host in parsed.hosts or [oslo_messaging.transport.TransportHost("")]:
        user = urllib.parse.quote(host.username or "guest", safe="")
        password = urllib.parse.quote(host.password or "guest", safe="")
        name = host.hostname or "localhost"
        if ":" in name:
            name = f"[{name}]"  # an IPv6 address
        hosts.append(f"amqp://{user}:{password}@{name}:{host.port or 5672}/{vhost}")
    return ";".join(hosts)


def ssl_options(conf: cfg.ConfigOpts, url: str | None) -> dict[str, Any] | bool:
    """kombu's ``ssl`` argument from ``[oslo_messaging_rabbit] ssl*``, as
    oslo's driver builds it: False without TLS, True for TLS without a CA
    (the server's certificate is not checked), else the files to use."""
    rabbit = conf[RABBIT]
    if not rabbit.ssl:
        return False
    options: dict[str, Any] = {}
    if rabbit.ssl_version:
        name = _SSL_VERSIONS.get(rabbit.ssl_version.lower())
        if name is None or not hasattr(ssl, name):
            raise ValueError(
                f"[{RABBIT}] ssl_version {rabbit.ssl_version!r} is not one of "
                f"{', '.join(sorted(_SSL_VERSIONS))} supported by this Python"
            )
        options["ssl_version"] = getattr(ssl, name)
    if rabbit.ssl_key_file:
        options["keyfile"] = rabbit.ssl_key_file
    if rabbit.ssl_cert_file:
        options["certfile"] = rabbit.ssl_cert_file
    if rabbit.ssl_ca_file:
        options["ca_certs"] = rabbit.ssl_ca_file
        options["cert_reqs"] = ssl.CERT_REQUIRED
        hosts = oslo_messaging.TransportURL.parse(conf, url).hosts
        # oslo checks the name only when the URL names a single host
        options["server_hostname"] = hosts[0].hostname if len(hosts) == 1 else None
    return options or True


def connection(
    conf: cfg.ConfigOpts, url: str | None, role: str, *, heartbeat: bool = True
) -> kombu.Connection:
    """A kombu connection (not yet connected) for ``role`` (a word naming
    what it does, shown in the broker's connection list)."""
    rabbit = conf[RABBIT]
    name = f"{os.path.basename(sys.argv[0])}:{os.getpid()}:{role}"
    return kombu.Connection(
        kombu_url(conf, url),
        ssl=ssl_options(conf, url),
        login_method=rabbit.rabbit_login_method,
        heartbeat=rabbit.heartbeat_timeout_threshold if heartbeat else 0,
        failover_strategy=rabbit.kombu_failover_strategy,
        transport_options={
            "client_properties": {
                "capabilities": {
                    "authentication_failure_close": True,
                    "connection.blocked": True,
                    "consumer_cancel_notify": True,
                },
                "connection_name": name,
            }
        },
    )
