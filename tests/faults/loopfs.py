"""A small ext4 filesystem on a loop device, to break a pool on purpose:
remount it read-only, or fill it to the last block.

Everything is undone on leaving, whatever happens: the qemu-nbd servers a
worker left on it are stopped (by their pid files under the test's own
directory), the filesystem is unmounted and the loop device detached.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Iterator

from tests.faults.audit import nbd_servers

__all__ = ["LoopFS", "loop_filesystem"]

LOG = logging.getLogger(__name__)

TOOLS = ("truncate", "mkfs.ext4", "losetup", "mount", "umount")


def _run(
    *args: str | pathlib.Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=check
    )


class LoopFS:
    """A mounted filesystem and the faults it can be given."""

    def __init__(self, mount: pathlib.Path, device: str) -> None:
        self.mount = mount
        self.device = device
        self.filler = mount / "filler"

    def read_only(self, timeout: float = 20) -> float:
        """Remount read-only; it only succeeds while no file is open for
        writing, so try until it does. Returns how long that took."""
        started = time.monotonic()
        while True:
            done = _run("mount", "-o", "remount,ro", self.mount, check=False)
            if done.returncode == 0:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise AssertionError(f"could not remount read-only: {done.stderr}")
            time.sleep(0.01)

    def read_write(self) -> None:
        _run("mount", "-o", "remount,rw", self.mount)

    def fill(self, leave: int = 64 * 1024) -> int:
        """Take every free block but ``leave`` bytes; return bytes taken."""
        st = os.statvfs(self.mount)
        size = st.f_bavail * st.f_frsize - leave
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
        finally:
            os.close(fd)
        return size

    def free(self) -> int:
        st = os.statvfs(self.mount)
        return st.f_bavail * st.f_frsize

    def unfill(self) -> None:
        self.filler.unlink(missing_ok=True)


def _stop_exports(owner: pathlib.Path) -> None:
    for pid in nbd_servers(owner):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while nbd_servers(owner) and time.monotonic() < deadline:
        time.sleep(0.05)


@contextlib.contextmanager
def loop_filesystem(
    base: pathlib.Path, owner: pathlib.Path, size: str = "256M"
) -> Iterator[LoopFS]:
    """An ext4 (no reserved blocks) of ``size`` mounted on ``base/mnt``;
    ``owner`` is the directory whose qemu-nbd servers are stopped before
    it is unmounted."""
    image, mount = base / "fs.img", base / "mnt"
    mount.mkdir(parents=True, exist_ok=True)
    _run("truncate", "-s", size, image)
    _run("mkfs.ext4", "-q", "-F", "-m", "0", image)
    device = _run("losetup", "-f", "--show", image).stdout.strip()
    try:
        _run("mount", device, mount)
        try:
            yield LoopFS(mount, device)
        finally:
            _stop_exports(owner)
            _run("mount", "-o", "remount,rw", mount, check=False)
            if _run("umount", mount, check=False).returncode != 0:
                LOG.warning("umount %s failed; unmounting lazily", mount)
                _run("umount", "-l", mount, check=False)
    finally:
        _run("losetup", "-d", device, check=False)
        image.unlink(missing_ok=True)
