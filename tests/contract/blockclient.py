"""A real block client for the contract suite: qemu-io and qemu-img (nbdinfo
for NBD) reading and writing what a connection_info points at.

- ``nbd``: the export over TLS-PSK with the connection's key
  (:mod:`nbdclient`);
- ``rbd``: qemu's ``rbd:POOL/IMAGE`` with the monitors, user and cluster the
  connection names, and the keyring of the ceph.conf in ``$CEPH_CONF`` (as a
  compute host keeps its key in /etc/ceph, outside the connection_info).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from tests.contract import nbdclient

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


def _rbd_qemu_io(
    connection: dict[str, Any], command: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-io", "-f", "raw", "-c", command, _rbd(connection["data"])],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _qemu_io(
    connection: dict[str, Any], command: str
) -> subprocess.CompletedProcess[str]:
    kind = connection["driver_volume_type"]
    if kind == "nbd":
        return nbdclient.qemu_io(connection, command)
    if kind == "rbd":
        return _rbd_qemu_io(connection, command)
    raise AssertionError(f"no client for driver_volume_type {kind!r}: {connection}")


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
        return nbdclient.size(connection)
    cmd = ["qemu-img", "info", "--output=json", "-f", "raw"]
    done = subprocess.run(
        [*cmd, _rbd(connection["data"])],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    return int(json.loads(done.stdout)["virtual-size"])
