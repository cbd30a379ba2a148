"""qemu-nbd servers: start one for an export, find it again, stop it.

Each export is one ``qemu-nbd --fork --persistent`` process serving one
volume on one TCP port under an unguessable export name, with TLS-PSK
required (unless ``nbd_tls = none``) and a key file that holds the one key
of that attachment. One process per attachment rather than one
qemu-storage-daemon for all: an NBD server has one set of TLS credentials
for every export it serves and lists them all to any client that completes
the handshake, so only a server of its own keeps another attachment's key
from reaching (or even naming) this export. A qemu-nbd costs about 1 MiB
of memory (PSS) per attachment; one daemon would serve 200 exports in 10 MiB
(bench figure 9).

Its pid file lives in the backend's state directory; a pid from that file
is only signalled after ``/proc/<pid>/cmdline`` shows it is the qemu-nbd
started with that very pid file and export name (pids get reused).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import random
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from volworker import exception

from .psk import Psk
from .tools import QEMU_NBD, fd_path, run

__all__ = [
    "Export",
    "PortInUse",
    "candidate_ports",
    "listen_problem",
    "parse_port_range",
    "running_pid",
    "serves",
    "start",
    "stop",
    "tls_args",
]

LOG = logging.getLogger(__name__)

START_TIMEOUT = 30
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Export:
    """One volume exported to one connector."""

    volume_id: str
    connector_host: str
    host: str
    port: int
    export_name: str
    #: Whether clients must connect with TLS-PSK (the key is not kept here).
    tls: bool = False

    @property
    def key(self) -> str:
        """A name for the export's files that does not give its export name
        away (the export name is what keeps others off the export)."""
        digest = hashlib.sha256(self.export_name.encode()).hexdigest()[:16]
        return f"volume-{self.volume_id}.{digest}"

    def connection_info(self, psk: Psk | None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "export_name": self.export_name,
        }
        if self.tls:
            assert psk is not None, "a TLS export needs its key"
            data["tls"] = psk.wire()
        return {"driver_volume_type": "nbd", "data": data}


class PortInUse(Exception):
    """qemu-nbd could not bind its port: another process holds it."""


def parse_port_range(text: str) -> tuple[int, int] | None:
    """``"FIRST-LAST"`` as two ints; None for an empty setting."""
    if not text.strip():
        return None
    first, sep, last = text.strip().partition("-")
    try:
        low, high = int(first), int(last if sep else first)
    except ValueError:
        low, high = 0, -1
    if not 1 <= low <= high <= 65535:
        raise exception.InvalidInput(
            reason=f"nbd_port_range {text!r} is not FIRST-LAST with "
            "1 <= FIRST <= LAST <= 65535"
        )
    return low, high


def _cannot_listen(host: str, exc: OSError) -> exception.VolumeBackendAPIException:
    return exception.VolumeBackendAPIException(
        data=f"cannot listen on nbd_host {host}: {exc.strerror or exc}"
    )


def _bound(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Qemu-nbd sets SO_REUSEADDR too, so a port in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def listen_problem(host: str) -> str | None:
    """Why exports cannot listen on ``host``, or None when they can."""
    try:
        _bound(host, 0).close()
    except OSError as exc:
        return str(_cannot_listen(host, exc).msg)
    return None


def _bindable(host: str, port: int) -> bool:
    try:
        _bound(host, port).close()
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        raise _cannot_listen(host, exc) from exc
    return True


def _os_port(host: str) -> int:
    try:
        with _bound(host, 0) as sock:
            return int(sock.getsockname()[1])
    except OSError as exc:
        raise _cannot_listen(host, exc) from exc


def candidate_ports(
    host: str, port_range: tuple[int, int] | None, reserved: set[int]
) -> Iterator[int]:
    """Ports that look free now, best first; a race for one is still
    possible, so the caller moves on to the next on PortInUse."""
    if port_range is None:
        for _ in range(100):
            port = _os_port(host)
            if port not in reserved:
                yield port
        return
    ports = [p for p in range(port_range[0], port_range[1] + 1) if p not in reserved]
    # A random order keeps concurrent exports from racing for one port.
    random.shuffle(ports)
    for port in ports:
        if _bindable(host, port):
            yield port


def tls_args(tls_dir: str | None) -> list[str]:
    """qemu-nbd's arguments for TLS-PSK with the key file in ``tls_dir``.

    Only the directory is named: the key and its identity never reach a
    command line, where any local user could read them.
    """
    if tls_dir is None:
        return []
    # Qemu's option syntax doubles a comma that belongs to a value.
    where = tls_dir.replace(",", ",,")
    return [
        f"--object=tls-creds-psk,id=tls0,endpoint=server,dir={where}",
        "--tls-creds=tls0",
    ]


def start(export: Export, volume_fd: int, pid_file: str, tls_dir: str | None) -> None:
    """Serve the volume open as ``volume_fd``, with TLS-PSK from the key in
    ``tls_dir`` when given; PortInUse when the port is taken,
    VolumeBackendAPIException on any other failure."""
    cmd = [
        QEMU_NBD,
        "--fork",
        f"--pid-file={pid_file}",
        "--persistent",
        f"--bind={export.host}",
        f"--port={export.port}",
        f"--export-name={export.export_name}",
        "--format=raw",
        # A client's TRIM punches holes, so the pool stays thin.
        "--discard=unmap",
        *tls_args(tls_dir),
        fd_path(volume_fd),
    ]
    done = run(cmd, timeout=START_TIMEOUT, pass_fds=[volume_fd], check=False)
    if done.returncode == 0:
        return
    if "Address already in use" in done.stderr:
        raise PortInUse(export.port)
    raise exception.VolumeBackendAPIException(
        data=f"qemu-nbd for volume {export.volume_id} on {export.host}:"
        f"{export.port} failed with exit code {done.returncode}: "
        f"{done.stderr.strip()}"
    )


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return False
    # A stopped server may linger as a zombie when no init reaps it.
    return bool(fields) and fields[0] not in ("Z", "X")


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def running_pid(pid_file: str, export_name: str) -> int | None:
    """The pid of the live qemu-nbd that ``pid_file`` names and that serves
    ``export_name``; None when there is none."""
    try:
        with open(pid_file, encoding="ascii") as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    args = _cmdline(pid)
    ours = (
        bool(args)
        and os.path.basename(args[0]) == QEMU_NBD
        and f"--pid-file={pid_file}" in args
        and f"--export-name={export_name}" in args
    )
    return pid if ours and _alive(pid) else None


def secured_as(pid: int, tls_dir: str | None) -> bool:
    """Whether process ``pid`` was started with exactly the TLS settings
    ``tls_dir`` stands for (none at all for None)."""
    args = _cmdline(pid)
    tls = [a for a in args if a.startswith(("--object=", "--tls-creds="))]
    return tls == tls_args(tls_dir)


def serves(pid: int, st: os.stat_result) -> bool:
    """Whether process ``pid`` has the file ``st`` describes open."""
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return False
    for fd in fds:
        try:
            other = os.stat(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino):
            return True
    return False


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have ended meanwhile
        os.kill(pid, signum)


def stop(pid_file: str, export_name: str) -> None:
    """Stop the qemu-nbd of ``pid_file`` if it is still running, and remove
    the pid file."""
    pid = running_pid(pid_file, export_name)
    if pid is not None:
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if running_pid(pid_file, export_name) == pid:
            LOG.warning("qemu-nbd %d ignored SIGTERM; killing it", pid)
            _signal(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(pid_file)
