"""Which volume is exported to whom, kept in ``<state_dir>/nbd``.

One record per export, ``<key>.json`` (``volume-<id>.<hash of the export
name>``), written before its qemu-nbd starts and removed after it stops, so
the records survive a worker restart and say what must be served (or
stopped) again. The pid file of an export is ``<key>.pid``, and the key of a
TLS export is ``<key>.tls/keys.psk`` (see :mod:`.psk`); the record itself
never holds the key. A volume is exported to one connector host at a time
(no multiattach).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import secrets
import threading
from typing import Any

from volworker import exception
from volworker.objects import Attachment

from . import nbd, psk
from .nbd import Export
from .psk import Psk

__all__ = ["ExportRegistry", "Wanted", "connector_host", "export_from_attachment"]

LOG = logging.getLogger(__name__)

_EXPORT_NAME = re.compile(r"[A-Za-z0-9_-]{16,128}")
#: How many ports to try when others keep winning the race for them.
_PORT_ATTEMPTS = 8


def connector_host(connector: Any) -> str:
    """The connector's ``host``, which tells one client from another."""
    host = connector.get("host") if isinstance(connector, dict) else None
    if not isinstance(host, str) or not host:
        raise exception.InvalidInput(
            reason=f"connector {connector!r} has no 'host' string"
        )
    return host


#: An export to serve again and its key (None for a plain export).
Wanted = tuple[Export, Psk | None]


def export_from_attachment(volume_id: str, attachment: Attachment) -> Wanted | None:
    """The export an attachment's connection_info describes, with its key;
    None when it is not an NBD connection (nothing to restore)."""
    info = attachment.connection_info
    if not isinstance(info, dict) or info.get("driver_volume_type") != "nbd":
        return None
    data = info.get("data") or {}
    host, port, name = data.get("host"), data.get("port"), data.get("export_name")
    key = psk.from_data(data["tls"]) if "tls" in data else None
    if not (
        isinstance(host, str)
        and host
        and isinstance(port, int)
        and 0 < port < 65536
        and isinstance(name, str)
        and _EXPORT_NAME.fullmatch(name)
        and ("tls" not in data or key is not None)
    ):
        # Which attachment, never what it holds: it may hold a key.
        raise exception.InvalidInput(
            reason=f"attachment {attachment.id} of volume {volume_id} has "
            "malformed NBD connection info"
        )
    client = connector_host(attachment.connector)
    return Export(volume_id, client, host, port, name, tls=key is not None), key


class ExportRegistry:
    """The NBD exports of one backend."""

    def __init__(
        self,
        state_dir: str,
        host: str,
        port_range: tuple[int, int] | None,
        tls: bool = True,
    ) -> None:
        self.dir = os.path.join(state_dir, "nbd")
        self.host = host
        self.port_range = port_range
        #: Whether new exports require TLS-PSK (``nbd_tls = psk``).
        self.tls = tls
        # One export starts at a time in this process, so two never
        # pick the same port; other processes are handled by PortInUse.
        self._lock = threading.Lock()

    def setup(self) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        # The key directories are below it: nobody else may look in.
        os.chmod(self.dir, 0o700)

    # -- records ----------------------------------------------------------

    def pid_file(self, export: Export) -> str:
        return os.path.join(self.dir, f"{export.key}.pid")

    def _key_dir(self, export: Export) -> str:
        return os.path.join(self.dir, f"{export.key}.tls")

    def tls_dir(self, export: Export) -> str | None:
        """Where the export's key file is; None for a plain export."""
        return self._key_dir(export) if export.tls else None

    def _record(self, export: Export) -> str:
        return os.path.join(self.dir, f"{export.key}.json")

    def _write(self, export: Export) -> None:
        path = self._record(export)
        tmp = f"{path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(dataclasses.asdict(export), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _read(self, name: str) -> Export | None:
        try:
            with open(os.path.join(self.dir, name), encoding="utf-8") as f:
                return Export(**json.load(f))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            LOG.warning("Ignoring unreadable export record %s: %s", name, exc)
            return None

    def _forget(self, export: Export) -> None:
        for path in (self._record(export), self.pid_file(export)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        psk.remove(self._key_dir(export))

    def _end(self, export: Export) -> None:
        """Refuse the export's key, stop its server, forget it."""
        # The key goes first: GnuTLS reads the file at every handshake, so
        # from here on nobody gets in, whatever stopping the server takes.
        psk.remove(self._key_dir(export))
        nbd.stop(self.pid_file(export), export.export_name)
        self._forget(export)

    def exports(self, volume_id: str | None = None) -> list[Export]:
        """The recorded exports, of one volume or of all."""
        prefix = f"volume-{volume_id}." if volume_id else "volume-"
        try:
            found = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        records = [
            self._read(n) for n in found if n.startswith(prefix) and n.endswith(".json")
        ]
        return [r for r in records if r is not None]

    def is_exported(self, volume_id: str) -> bool:
        return bool(self.exports(volume_id))

    # -- servers ----------------------------------------------------------

    def _serve(self, export: Export, volume_fd: int) -> None:
        """Make sure a qemu-nbd serves ``export`` from the open volume, with
        the TLS settings the export wants."""
        pid_file, tls_dir = self.pid_file(export), self.tls_dir(export)
        pid = nbd.running_pid(pid_file, export.export_name)
        if (
            pid is not None
            and nbd.serves(pid, os.fstat(volume_fd))
            and nbd.secured_as(pid, tls_dir)
        ):
            LOG.debug("qemu-nbd %d still serves volume %s", pid, export.volume_id)
            return
        nbd.stop(pid_file, export.export_name)
        try:
            nbd.start(export, volume_fd, pid_file, tls_dir)
        except nbd.PortInUse:
            raise exception.VolumeBackendAPIException(
                data=f"cannot serve volume {export.volume_id} again on "
                f"{export.host}:{export.port}: another process holds that port"
            ) from None
        LOG.info(
            "Serving volume %s again on %s:%d",
            export.volume_id,
            export.host,
            export.port,
        )

    def _start_new(self, volume_id: str, client: str, volume_fd: int) -> Wanted:
        name = secrets.token_urlsafe(16)
        key = psk.new() if self.tls else None
        reserved = {e.port for e in self.exports()}
        ports = nbd.candidate_ports(self.host, self.port_range, reserved)
        for _, port in zip(range(_PORT_ATTEMPTS), ports, strict=False):
            export = Export(volume_id, client, self.host, port, name, tls=self.tls)
            self._write(export)
            tls_dir = self.tls_dir(export)
            try:
                if tls_dir is not None and key is not None:
                    psk.write(tls_dir, key)
                nbd.start(export, volume_fd, self.pid_file(export), tls_dir)
            except nbd.PortInUse:
                LOG.debug("Port %d was taken meanwhile; trying another", port)
                self._forget(export)
                continue
            except BaseException:
                self._forget(export)
                raise
            LOG.info(
                "Exported volume %s to %s on %s:%d (%s)",
                volume_id,
                client,
                self.host,
                port,
                "TLS-PSK" if self.tls else "plain NBD, no TLS",
            )
            return export, key
        raise exception.VolumeBackendAPIException(
            data=f"no free port for an NBD export of volume {volume_id} on "
            f"{self.host} (nbd_port_range {self.port_range or 'any'})"
        )

    def _key_of(self, export: Export) -> Psk | None:
        """The key of an export being handed out again."""
        tls_dir = self.tls_dir(export)
        if tls_dir is None:
            return None
        key = psk.read(tls_dir)
        if key is None:
            # Without its file nobody can use the export; a new key makes
            # it usable again, and the caller records the new connection.
            LOG.warning(
                "The export of volume %s to %s had lost its key; made a new one",
                export.volume_id,
                export.connector_host,
            )
            key = psk.new()
            psk.write(tls_dir, key)
        return key

    def connect(self, volume_id: str, client: str, volume_fd: int) -> dict[str, Any]:
        """The connection info of the volume's export to ``client``, made if
        needed; the same one (key included) when it exists already."""
        with self._lock:
            current = self.exports(volume_id)
            others = sorted({e.connector_host for e in current} - {client})
            if others:
                raise exception.VolumeIsBusy(
                    volume_id=volume_id,
                    reason=f"it is exported to {', '.join(others)} and "
                    "multiattach is not supported",
                )
            if current:
                key = self._key_of(current[0])
                self._serve(current[0], volume_fd)
                return current[0].connection_info(key)
            export, key = self._start_new(volume_id, client, volume_fd)
            return export.connection_info(key)

    def disconnect(self, volume_id: str, client: str | None) -> int:
        """Stop the volume's exports to ``client`` (all with None)."""
        stopped = 0
        for export in self.exports(volume_id):
            if client is None or export.connector_host == client:
                self._end(export)
                LOG.info(
                    "Stopped the export of volume %s to %s",
                    volume_id,
                    export.connector_host,
                )
                stopped += 1
        return stopped

    def restore(self, volume_id: str, wanted: list[Wanted], volume_fd: int) -> None:
        """Serve exactly ``wanted`` (same ports, names and keys) for the
        volume; end every other export of it."""
        names = {e.export_name for e, _ in wanted}
        with self._lock:
            for export in self.exports(volume_id):
                if export.export_name not in names:
                    LOG.warning(
                        "Volume %s was exported to %s without an attachment; "
                        "stopping that export",
                        volume_id,
                        export.connector_host,
                    )
                    self._end(export)
            for export, key in wanted:
                self._write(export)
                tls_dir = self.tls_dir(export)
                if tls_dir is not None and key is not None:
                    psk.write(tls_dir, key)
                elif self.tls:
                    LOG.warning(
                        "Volume %s is attached to %s over plain NBD (made "
                        "under nbd_tls = none); detach and attach it again "
                        "to put it under TLS",
                        volume_id,
                        export.connector_host,
                    )
                self._serve(export, volume_fd)
