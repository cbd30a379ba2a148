"""A real NBD client for the contract suite: qemu-io and nbdinfo."""

from __future__ import annotations

import subprocess
from typing import Any

TIMEOUT = 120


def url(connection: dict[str, Any]) -> str:
    assert connection["driver_volume_type"] == "nbd", connection
    data = connection["data"]
    return f"nbd://{data['host']}:{data['port']}/{data['export_name']}"


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
    """Write ``length`` bytes of ``pattern`` at ``offset`` through the export."""
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
    """The export's size in bytes, as an NBD client sees it."""
    done = subprocess.run(
        ["nbdinfo", "--size", url(connection)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    return int(done.stdout.strip())
