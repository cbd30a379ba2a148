"""An XFS filesystem with reflink on a loop device, made once per session.

Tests that must see real reflinks (the ``file-xfs`` contract harness, the
file driver's unit tests, ``bench/snapshot_clone.py``) use it. It needs root:
without root the fixture skips on a laptop and fails under ``CI=true``.

To use the fixture in a test directory, import it into that directory's
conftest.py::

    from tests.contract.xfs import xfs_mount  # noqa: F401
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import IN_CI, require_root

__all__ = ["mounted_xfs", "xfs_mount"]

LOG = logging.getLogger(__name__)

SIZE = "20G"
TOOLS = ("truncate", "mkfs.xfs", "mount", "umount")


def _run(*args: str | pathlib.Path) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True, timeout=120)


def _umount(mount: pathlib.Path) -> None:
    done = subprocess.run(
        ["umount", str(mount)], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        # NOTE: something still holds a file there (a leaked export); a lazy
        # unmount detaches it now and frees the loop device once it is let go.
        LOG.warning("umount %s failed (%s); unmounting lazily", mount, done.stderr)
        subprocess.run(["umount", "-l", str(mount)], check=False, timeout=120)


@contextmanager
def mounted_xfs(base: pathlib.Path, size: str = SIZE) -> Iterator[pathlib.Path]:
    """A sparse image under ``base`` made into XFS with reflink and mounted
    on ``base/mnt``; unmounted and removed on leaving, whatever happens."""
    image = base / "xfs.img"
    mount = base / "mnt"
    mount.mkdir(exist_ok=True)
    try:
        _run("truncate", "-s", size, image)
        _run("mkfs.xfs", "-q", "-m", "reflink=1", image)
        # NOTE: mount -o loop sets autoclear, so umount frees the loop device.
        _run("mount", "-o", "loop", image, mount)
        try:
            yield mount
        finally:
            _umount(mount)
    finally:
        image.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            mount.rmdir()  # only ever an empty mount point


@pytest.fixture(scope="session")
def xfs_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    """The mount point of a fresh XFS (reflink=1) for the whole session."""
    require_root("an XFS loop mount")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        message = f"an XFS loop mount needs {', '.join(missing)} (xfsprogs)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with mounted_xfs(tmp_path_factory.mktemp("xfs")) as mount:
        yield mount
