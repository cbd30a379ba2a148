"""A real NBD client for the tests: qemu-io and nbdinfo, over TLS-PSK with
the key the connection info carries (plain NBD when it carries none)."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

from volworker import nbd_access

TIMEOUT = 120


@contextlib.contextmanager
def access(connection: dict[str, Any]) -> Iterator[nbd_access.Access]:
    """The export of ``connection``, its key (if any) in a private temp dir
    for as long as the block runs."""
    assert connection["driver_volume_type"] == "nbd", connection
    with tempfile.TemporaryDirectory(prefix="vw-psk-") as tmp:
        yield nbd_access.prepare(connection["data"], f"{tmp}/psk")


def qemu_io(
    connection: dict[str, Any], *commands: str, read_only: bool = False
) -> subprocess.CompletedProcess[str]:
    """qemu-io's ``-c`` commands against the export; the finished process."""
    with access(connection) as a:
        return subprocess.run(
            [
                "qemu-io",
                *(["-r"] if read_only else []),
                *a.qemu_args(),
                *(arg for c in commands for arg in ("-c", c)),
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )


def nbdinfo(connection: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """libnbd's nbdinfo with ``args`` before the export's URI."""
    with access(connection) as a:
        return subprocess.run(
            ["nbdinfo", *args, a.uri()],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )


def write(connection: dict[str, Any], offset: int, length: int, pattern: int) -> None:
    """Write ``length`` bytes of ``pattern`` at ``offset`` through the export."""
    done = qemu_io(connection, f"write -P {pattern:#x} {offset} {length}")
    assert done.returncode == 0 and "wrote" in done.stdout, done.stdout + done.stderr


def holds(connection: dict[str, Any], offset: int, length: int, pattern: int) -> bool:
    """Whether every byte in the range reads back as ``pattern``."""
    done = qemu_io(connection, f"read -P {pattern:#x} {offset} {length}")
    if "Pattern verification failed" in done.stdout:
        return False
    assert done.returncode == 0 and "read" in done.stdout, done.stdout + done.stderr
    return True


def size(connection: dict[str, Any]) -> int:
    """The export's size in bytes, as an NBD client sees it."""
    done = nbdinfo(connection, "--size")
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def reachable(connection: dict[str, Any]) -> bool:
    """Whether a client holding the connection's key gets the export."""
    return nbdinfo(connection, "--size").returncode == 0
