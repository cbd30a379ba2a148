"""Where the client sends its requests: URL, topic, server and timeout.

Each comes from the command line first, then the environment
(``VOLWORKER_TRANSPORT_URL``, ``VOLWORKER_TOPIC``, ``VOLWORKER_HOST``), then
the worker's own configuration file (``--config-file``: ``[DEFAULT] transport_url``,
``volume_topic``, and ``host``/``cluster`` with a single enabled backend),
then the defaults.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from oslo_config import cfg

from volworker.cmd._client.errors import EXIT_UNREACHED, ClientError

__all__ = [
    "DEFAULT_TOPIC",
    "DEFAULT_URL",
    "HOST_ENV",
    "TOPIC_ENV",
    "URL_ENV",
    "Settings",
    "resolve",
]

DEFAULT_URL = "rabbit://guest:guest@127.0.0.1:5672/"
DEFAULT_TOPIC = "volworker"
URL_ENV = "VOLWORKER_TRANSPORT_URL"
HOST_ENV = "VOLWORKER_HOST"
TOPIC_ENV = "VOLWORKER_TOPIC"

# The names and meaning of the worker's options; registered on a
# private ConfigOpts that only reads them, so the worker's modules (and
# their imports) stay out of the client.
_file_opts = [
    cfg.StrOpt("transport_url", secret=True),
    cfg.StrOpt("volume_topic"),
    cfg.StrOpt("host"),
    cfg.StrOpt("cluster"),
    cfg.ListOpt("enabled_backends", default=[]),
]


@dataclass(frozen=True)
class Settings:
    url: str
    topic: str
    host: str | None  # "<host>@<backend>", the server requests go to
    timeout: float


def _read_config(path: str) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    conf.register_opts(_file_opts)
    try:
        conf(args=[], default_config_files=[path], default_config_dirs=[])
        # The global CONF reads the file too, so that its
        # [oslo_messaging_*] sections (TLS, heartbeats) shape the transport.
        cfg.CONF(args=[], default_config_files=[path], default_config_dirs=[])
    except cfg.Error as exc:
        raise ClientError(f"cannot read {path}: {exc}", EXIT_UNREACHED) from None
    return conf


def _host_from_config(conf: cfg.ConfigOpts) -> str | None:
    backends = list(conf.enabled_backends or [])
    if len(backends) != 1:
        return None
    return f"{conf.cluster or conf.host or socket.gethostname()}@{backends[0]}"


def resolve(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """The settings for this run, from ``args``, ``environ`` and the file."""
    conf = _read_config(args.config_file) if args.config_file else None
    url = args.url or environ.get(URL_ENV) or (conf and conf.transport_url)
    topic = args.topic or environ.get(TOPIC_ENV) or (conf and conf.volume_topic)
    host = args.host or environ.get(HOST_ENV) or (conf and _host_from_config(conf))
    return Settings(
        url=url or DEFAULT_URL,
        topic=topic or DEFAULT_TOPIC,
        host=host or None,
        timeout=args.timeout,
    )
