"""One run of the client: its settings, its connection and its output."""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any

import oslo_messaging
from oslo_config import cfg

from volworker import exception
from volworker.cmd._client.errors import EXIT_UNREACHED, ClientError
from volworker.cmd._client.output import Output
from volworker.cmd._client.settings import HOST_ENV, Settings
from volworker.rpc.rpcapi import VolumeAPI

__all__ = ["Session", "check_server"]

LOG = logging.getLogger(__name__)

#: How often a cast is retried while the broker is away (then it fails).
SEND_RETRIES = 2
AMQP_PORT = 5672


def check_server(value: str) -> str:
    """``HOST@BACKEND``: a server of the contract (no pool)."""
    host, sep, backend = value.partition("@")
    if not (host and sep and backend) or "#" in value:
        raise ValueError(f"{value!r} is not HOST@BACKEND")
    return value


def _check_broker(url: str, timeout: float) -> None:
    """Fail fast, naming the broker, when none of its hosts takes a connection.

    Oslo.messaging retries the connection of a call's reply queue for
    ever whatever ``retry`` says; without this a CLI would hang silently.
    """
    parsed = oslo_messaging.TransportURL.parse(cfg.CONF, url)
    if parsed.transport not in ("rabbit", "amqp", "kombu") or not parsed.hosts:
        return
    problems: list[str] = []
    for host in parsed.hosts:
        address = (host.hostname or "localhost", host.port or AMQP_PORT)
        try:
            with socket.create_connection(address, timeout=min(timeout, 5.0)):
                return
        except OSError as exc:
            problems.append(f"{address[0]}:{address[1]} ({exc.strerror or exc})")
    raise ClientError(
        f"cannot reach the message broker at {', '.join(problems)}", EXIT_UNREACHED
    )


class Session:
    """What a command works with: the API client, the server, the output."""

    def __init__(self, settings: Settings, out: Output) -> None:
        self.settings = settings
        self.out = out
        self._api: VolumeAPI | None = None

    @property
    def api(self) -> VolumeAPI:
        if self._api is None:
            _check_broker(self.settings.url, self.settings.timeout)
            self._api = VolumeAPI.from_url(
                self.settings.url,
                topic=self.settings.topic,
                timeout=self.settings.timeout,
                retry=SEND_RETRIES,
            )
        return self._api

    @property
    def server(self) -> str:
        """The ``HOST@BACKEND`` every request of this run goes to."""
        host = self.settings.host
        if not host:
            raise ClientError(
                f"which worker? give --host HOST@BACKEND or set {HOST_ENV}",
                EXIT_UNREACHED,
            )
        try:
            return check_server(host)
        except ValueError as exc:
            raise ClientError(f"bad server: {exc}", EXIT_UNREACHED) from None

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    # -- records --------------------------------------------------------------

    def get_volume(self, volume_id: str) -> dict[str, Any]:
        return self.api.get_volume(self.server, volume_id)

    def get_snapshot(self, snapshot_id: str) -> dict[str, Any]:
        return self.api.get_snapshot(self.server, snapshot_id)

    def find_volume(self, volume_id: str) -> dict[str, Any] | None:
        """The volume's record, or None when the worker has no such volume."""
        try:
            return self.get_volume(volume_id)
        except exception.VolumeNotFound:
            return None

    def find_snapshot(self, snapshot_id: str) -> dict[str, Any] | None:
        try:
            return self.get_snapshot(snapshot_id)
        except exception.SnapshotNotFound:
            return None

    def find(self, kind: str, object_id: str) -> dict[str, Any] | None:
        """The record of a ``"volume"``, ``"snapshot"``, ``"group"`` or
        ``"group snapshot"``, or None when the worker has no such object."""
        if kind == "volume":
            return self.find_volume(object_id)
        if kind == "snapshot":
            return self.find_snapshot(object_id)
        try:
            if kind == "group":
                return self.api.get_group(self.server, object_id)
            return self.api.get_group_snapshot(self.server, object_id)
        except (exception.GroupNotFound, exception.GroupSnapshotNotFound):
            return None

    @staticmethod
    def volume_arg(record: dict[str, Any]) -> dict[str, Any]:
        """The contract's volume object for a cast, from the volume's record."""
        return {"id": record["id"], "size": record["size"], "host": record["host"]}

    def new_volume_id(self, given: str | None) -> str:
        """An id for a new volume; ClientError if the given one is taken.

        Asking for it also proves that the server answers before anything
        is cast: a cast to a server nobody serves vanishes without a word.
        """
        volume_id = given or str(uuid.uuid4())
        existing = self.find_volume(volume_id)
        if existing is not None:
            raise ClientError(
                f"volume {volume_id} exists already ({existing['status']})"
            )
        return volume_id

    def placement(self, pool: str | None) -> str:
        """The host of a new volume: ``HOST@BACKEND[#POOL]``."""
        return f"{self.server}#{pool}" if pool else self.server
