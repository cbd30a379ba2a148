"""Snapshots and clones: reflinks on XFS, sparse copies elsewhere; new objects
appear whole or not at all."""

from __future__ import annotations

import fcntl
import os
import pathlib

import pytest

from tests.unit.file.conftest import Build
from tests.unit.file.helpers import (
    GiB,
    MiB,
    created,
    pool_dir,
    read,
    snapshot,
    snapshot_path,
    volume,
    volume_path,
    write,
)
from volworker import exception
from volworker.context import RequestContext
from volworker.objects import Volume
from volworker_drivers.file import copy
from volworker_drivers.file.driver import FileDriver

DATA = os.urandom(MiB)


def _fill(driver: FileDriver, size: int = 1) -> tuple[Volume, pathlib.Path]:
    """A volume with 1 MiB of data at 0 and at 512 MiB, holes elsewhere."""
    vol = created(driver, size)
    path = volume_path(driver, vol)
    write(path, 0, DATA)
    write(path, 512 * MiB, DATA)
    return vol, path


def _free_bytes(path: pathlib.Path) -> int:
    fs = os.statvfs(path)
    return fs.f_bfree * fs.f_frsize


def test_new_volumes_are_sparse(driver: FileDriver) -> None:
    vol = created(driver, 5)
    st = os.stat(volume_path(driver, vol))
    assert st.st_size == 5 * GiB and st.st_blocks == 0


def test_sparse_copy_keeps_holes_where_there_is_no_reflink(driver: FileDriver) -> None:
    assert driver.reflink == {"alpha": False, "beta": False}
    vol, _ = _fill(driver)
    snap = snapshot(driver, vol)
    assert driver.last_copy_method == copy.SPARSE_COPY
    clone = volume(driver, 3, pool="beta")
    driver.create_cloned_volume(clone, vol)
    assert driver.last_copy_method == copy.SPARSE_COPY
    for copied, size in (
        (snapshot_path(driver, snap), GiB),
        (volume_path(driver, clone), 3 * GiB),
    ):
        st = os.stat(copied)
        assert st.st_size == size
        # two MiB of data, not a GiB of zeros
        assert st.st_blocks * 512 <= 4 * MiB, st.st_blocks
        assert read(copied, 0, MiB) == DATA and read(copied, 512 * MiB, MiB) == DATA
        assert read(copied, 256 * MiB, MiB) == bytes(MiB)


def test_reflink_is_used_on_xfs(xfs_driver: FileDriver) -> None:
    driver = xfs_driver
    assert driver.reflink == {"fast": True}
    vol = created(driver, 1)
    path = volume_path(driver, vol)
    write(path, 0, os.urandom(64 * MiB))
    before = _free_bytes(path)
    snap = snapshot(driver, vol)
    assert driver.last_copy_method == copy.REFLINK
    clone = volume(driver, 2)
    driver.create_cloned_volume(clone, vol)
    assert driver.last_copy_method == copy.REFLINK
    # Copies would take 128 MiB more; reflinks share the blocks.
    assert before - _free_bytes(path) < 16 * MiB
    assert read(snapshot_path(driver, snap), 0, 64 * MiB) == read(path, 0, 64 * MiB)
    assert os.path.getsize(volume_path(driver, clone)) == 2 * GiB
    # writing the source afterwards changes neither copy
    write(path, 0, b"\xff" * MiB)
    assert read(volume_path(driver, clone), 0, MiB) != b"\xff" * MiB
    assert read(snapshot_path(driver, snap), 0, MiB) != b"\xff" * MiB


def test_clone_between_xfs_and_another_filesystem(
    build: Build, xfs_mount: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    driver = build(pools=[f"fast:{xfs_mount / 'cross'}", f"slow:{tmp_path / 'slow'}"])
    vol = created(driver, pool="fast")
    write(volume_path(driver, vol), 0, DATA)
    clone = volume(driver, pool="slow")
    driver.create_cloned_volume(clone, vol)
    assert driver.last_copy_method == copy.SPARSE_COPY
    assert read(volume_path(driver, clone), 0, MiB) == DATA


def test_data_extents_walks_data_only(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "f"
    with open(path, "wb") as f:
        f.truncate(64 * MiB)
    write(path, 8 * MiB, DATA)
    fd = os.open(path, os.O_RDONLY)
    try:
        extents = list(copy.data_extents(fd, 64 * MiB))
    finally:
        os.close(fd)
    assert len(extents) == 1
    start, end = extents[0]
    assert start <= 8 * MiB < 9 * MiB <= end < 64 * MiB


def test_clone_never_shrinks(driver: FileDriver) -> None:
    vol = created(driver, 2)
    with pytest.raises(exception.InvalidInput, match="never shrink"):
        driver.create_cloned_volume(volume(driver, 1), vol)
    snap = snapshot(driver, vol)
    with pytest.raises(exception.InvalidInput, match="never shrink"):
        driver.create_volume_from_snapshot(volume(driver, 1), snap)


def test_revert_is_atomic_and_keeps_the_size(driver: FileDriver) -> None:
    vol, path = _fill(driver)
    snap = snapshot(driver, vol)
    driver.extend_volume(vol, 3)
    write(path, 0, b"\x01" * MiB)
    inode = os.stat(path).st_ino
    driver.revert_to_snapshot(RequestContext(), vol.replace(size=3), snap)
    assert os.path.getsize(path) == 3 * GiB
    assert read(path, 0, MiB) == DATA
    assert os.stat(path).st_ino != inode  # a new file was put in place
    assert os.listdir(pool_dir(driver) / ".tmp") == []


def test_stale_temp_files_are_cleared_at_setup(
    build: Build, driver: FileDriver
) -> None:
    tmp = pool_dir(driver) / ".tmp"
    (tmp / "volume-x.dead").write_bytes(b"half a volume")
    (tmp / "link.dead").symlink_to(pool_dir(driver, "beta"))
    busy = tmp / "volume-y.busy"
    busy.write_bytes(b"still being written")
    with open(busy, "rb") as held:
        # Another process still writing holds the file's lock.
        fcntl.flock(held, fcntl.LOCK_EX)
        build()
        assert sorted(os.listdir(tmp)) == ["volume-y.busy"]
    assert pool_dir(driver, "beta").is_dir()
