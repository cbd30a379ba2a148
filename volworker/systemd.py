"""Talking to systemd: readiness, status, stopping and watchdog pings.

``sd_notify`` is a datagram on the socket named by ``NOTIFY_SOCKET``; with no
such variable (not under systemd) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket

__all__ = ["notify", "watchdog_interval"]

LOG = logging.getLogger(__name__)


def notify(*lines: str) -> bool:
    """Send ``READY=1``, ``STATUS=...`` and the like; False when not sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
        ) as sock:
            sock.connect(address)
            sock.sendall("\n".join(lines).encode())
    except OSError as exc:
        LOG.warning("Could not notify systemd at %s: %s", address, exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of WATCHDOG_USEC), or None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2_000_000
    except ValueError:
        return None
