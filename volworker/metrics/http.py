"""The worker's HTTP endpoint: ``/metrics`` for Prometheus and ``/healthz``
for orchestration, off unless ``[metrics] listen`` is set.

It serves from threads of its own; a scrape reads the counters directly
and asks the event loop and the state store for the live figures
(:mod:`.live`), so it never holds up an operation.
"""

from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
from typing import Any

from oslo_config import cfg
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from volworker.health import Health

__all__ = ["Endpoint", "metrics_opts", "parse_address", "register_opts"]

LOG = logging.getLogger(__name__)

GROUP = "metrics"

metrics_opts = [
    cfg.StrOpt(
        "listen",
        help="host:port (e.g. 127.0.0.1:9669) where the worker serves "
        "Prometheus metrics (/metrics) and its health (/healthz: 200 when "
        "ready, 503 otherwise); unset, nothing is served and nothing is "
        "counted. Port 0 picks a free port (the log says which). Anyone who "
        "can reach the port can read the figures: bind to a private address. "
        "Instances of volworker@.service that share a configuration each "
        "need a port of their own (OS_METRICS__LISTEN in a drop-in).",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(metrics_opts, group=GROUP)


def parse_address(text: str) -> tuple[str, int]:
    """``("host", port)`` from ``host:port`` (``[::1]:9669`` for IPv6)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"[{GROUP}] listen = {text!r} is not host:port")
    return host, int(port)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], registry: CollectorRegistry, health: Health
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        # Bound in Endpoint.start, so that a busy port is the caller's error.
        super().__init__(address, _Handler, bind_and_activate=False)
        self.registry = registry
        self.health = health


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._reply(200, content_type, encoder(self.server.registry))
        elif path == "/healthz":
            verdict = self.server.health.check_from_thread()
            body = json.dumps(verdict.to_dict(), indent=1).encode() + b"\n"
            self._reply(200 if verdict.ok else 503, "application/json", body)
        elif path == "/":
            body = b"volworker: /metrics, /healthz\n"
            self._reply(200, "text/plain; charset=utf-8", body)
        else:
            self._reply(404, "text/plain; charset=utf-8", b"not found\n")

    def _reply(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s %s", self.address_string(), format % args)


class Endpoint:
    """Serves ``/metrics`` and ``/healthz`` until stopped."""

    def __init__(
        self, address: tuple[str, int], registry: CollectorRegistry, health: Health
    ) -> None:
        self._server = _Server(address, registry, health)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://[{name}]:{port}" if ":" in name else f"http://{name}:{port}"

    def start(self) -> None:
        """Bind and serve; OSError when the address cannot be had."""
        try:
            self._server.server_bind()
            self._server.server_activate()
        except OSError:
            self._server.server_close()
            raise
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )
        self._thread.start()
        LOG.info(
            "Serving metrics on %s/metrics and health on %s/healthz", self.url, self.url
        )

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()
