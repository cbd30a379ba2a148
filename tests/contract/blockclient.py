"""A real block client for the contract suite: qemu-io and qemu-img (nbdinfo
for NBD) reading and writing what a connection_info points at.

- ``nbd``: ``nbd://host:port/export_name``;
- ``rbd``: qemu's ``rbd:POOL/IMAGE`` with the monitors, user and cluster the
  connection names, and the keyring of the ceph.conf in ``$CEPH_CONF`` (as a
  compute host keeps its key in /etc/ceph, outside the connection_info).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

TIMEOUT = 120
#: the driver_volume_types this client can open
PROTOCOLS = ("nbd", "rbd")


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:").replace("@", "\\@")


def _rbd(data: dict[str, Any]) -> str:
    monitors = ";".join(
        f"{host}:{port}"
        for host, port in zip(data["hosts"], data["ports"], strict=True)
    )
    parts = [f"rbd:{data['name']}", f"mon_host={_escaped(monitors)}"]
    if data["auth_enabled"]:
        parts.append(f"id={_escaped(data['auth_username'])}")
    conf = os.environ.get("CEPH_CONF")
    if conf:
        parts.append(f"conf={_escaped(conf)}")
    return ":".join(parts)


def url(connection: dict[str, Any]) -> str:
    """What qemu opens for the connection."""
    kind, data = connection["driver_volume_type"], connection["data"]
    if kind == "nbd":
        return f"nbd://{data['host']}:{data['port']}/{data['export_name']}"
    if kind == "rbd":
        return _rbd(data)
    raise AssertionError(f"no client for driver_volume_type {kind!r}: {connection}")


def _qemu_io(
    connection: dict[str, Any], command: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-io", "-f", "raw", "-c", command, url(connection)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def write(connection: dict[str, Any], offset: int, length: int, pattern: int) -> None:
    """Write ``length`` bytes of ``pattern`` at ``offset`` through the
    connection."""
    done = _qemu_io(connection, f"write -P {pattern:#x} {offset} {length}")
    assert done.returncode == 0 and "wrote" in done.stdout, done.stdout + done.stderr


def holds(connection: dict[str, Any], offset: int, length: int, pattern: int) -> bool:
    """Whether every byte in the range reads back as ``pattern``."""
    done = _qemu_io(connection, f"read -P {pattern:#x} {offset} {length}")
    if "Pattern verification failed" in done.stdout:
        return False
    assert done.returncode == 0 and "read" in done.stdout, done.stdout + done.stderr
    return True


def size(connection: dict[str, Any]) -> int:
    """The volume's size in bytes, as a client sees it."""
    if connection["driver_volume_type"] == "nbd":
        cmd = ["nbdinfo", "--size", url(connection)]
    else:
        cmd = ["qemu-img", "info", "--output=json", "-f", "raw", url(connection)]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=TIMEOUT, check=True
    )
    if cmd[0] == "nbdinfo":
        return int(done.stdout.strip())
    return int(json.loads(done.stdout)["virtual-size"])
