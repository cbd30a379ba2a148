"""Volumes and snapshots on disk: idempotent redo, refusals, stats, and a full
filesystem."""

from __future__ import annotations

import errno
import os
import pathlib
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import require_root
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
from volworker_drivers.file.driver import FileDriver


@pytest.fixture
def tiny_fs(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """An 8 MiB tmpfs: too small for a copy of 16 MiB of data."""
    require_root("a tmpfs mount")
    path = tmp_path / "tiny"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", path], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", path], check=True)


def test_create_is_redone_safely(driver: FileDriver) -> None:
    vol = created(driver, 2)
    write(volume_path(driver, vol), 0, b"kept")
    driver.create_volume(vol)  # the journal redoes it: nothing changes
    assert read(volume_path(driver, vol), 0, 4) == b"kept"
    with pytest.raises(exception.VolumeBackendAPIException, match="already exists"):
        driver.create_volume(vol.replace(size=3))
    assert os.path.getsize(volume_path(driver, vol)) == 2 * GiB


@pytest.mark.parametrize("size", [0, -1, True, 1.5, "1"])
def test_sizes_must_be_whole_gib(driver: FileDriver, size: object) -> None:
    with pytest.raises(exception.InvalidInput, match="size"):
        driver.create_volume(volume(driver).replace(size=size))


def test_delete(driver: FileDriver) -> None:
    vol = created(driver)
    snap = snapshot(driver, vol)
    with pytest.raises(exception.VolumeIsBusy, match=snap.name):
        driver.delete_volume(vol)
    driver.delete_snapshot(snap)
    driver.delete_snapshot(snap)  # gone already: success
    driver.delete_volume(vol)
    driver.delete_volume(vol)  # gone already: success
    assert sorted(os.listdir(pool_dir(driver))) == [".snapshots", ".tmp"]
    assert os.listdir(pool_dir(driver) / ".snapshots") == []


def test_snapshot_redo_and_point_in_time(driver: FileDriver) -> None:
    vol = created(driver)
    write(volume_path(driver, vol), 0, b"first")
    snap = snapshot(driver, vol)
    write(volume_path(driver, vol), 0, b"later")
    driver.create_snapshot(snap)  # redone: the first copy stays
    assert read(snapshot_path(driver, snap), 0, 5) == b"first"
    copy = volume(driver, 2)
    driver.create_volume_from_snapshot(copy, snap)
    assert read(volume_path(driver, copy), 0, 5) == b"first"
    assert os.path.getsize(volume_path(driver, copy)) == 2 * GiB


def test_snapshot_of_a_missing_volume(driver: FileDriver) -> None:
    with pytest.raises(exception.VolumeNotFound):
        driver.create_snapshot(snapshot(driver, volume(driver), create=False))
    vol = created(driver)
    with pytest.raises(exception.SnapshotNotFound):
        driver.create_volume_from_snapshot(
            volume(driver), snapshot(driver, vol, create=False)
        )


def test_extend_never_shrinks(driver: FileDriver) -> None:
    vol = created(driver, 2)
    with pytest.raises(exception.InvalidInput, match="cannot shrink"):
        driver.extend_volume(vol, 1)
    driver.extend_volume(vol, 2)
    driver.extend_volume(vol, 5)
    assert os.path.getsize(volume_path(driver, vol)) == 5 * GiB
    with pytest.raises(exception.VolumeNotFound):
        driver.extend_volume(volume(driver), 2)


def test_revert_is_refused_while_exported(driver: FileDriver) -> None:
    vol = created(driver)
    snap = snapshot(driver, vol)
    driver.initialize_connection(vol, {"host": "c"})
    with pytest.raises(exception.VolumeIsBusy, match="exported"):
        driver.revert_to_snapshot(RequestContext(), vol, snap)
    other = created(driver)
    with pytest.raises(exception.InvalidInput, match="not a snapshot of"):
        driver.revert_to_snapshot(RequestContext(), other, snap)


def test_stats(build: Build) -> None:
    driver = build(reserved_percentage=15, max_over_subscription_ratio=3.5)
    created(driver, 3)
    created(driver, 2, pool="beta")
    (pool_dir(driver) / "stray").write_bytes(b"x")
    stats = driver.get_volume_stats(refresh=True)
    assert stats["volume_backend_name"] == "file1"
    assert stats["storage_protocol"] == "NBD" and stats["vendor_name"] == "volworker"
    alpha, beta = stats["pools"]
    assert alpha["provisioned_capacity_gb"] == 4  # the stray file counts too
    assert alpha["total_volumes"] == 1 and beta["total_volumes"] == 1
    fs = os.statvfs(pool_dir(driver))
    assert alpha["total_capacity_gb"] == round(fs.f_blocks * fs.f_frsize / GiB, 2)
    assert stats["total_capacity_gb"] == round(2 * alpha["total_capacity_gb"], 2)
    assert alpha["reserved_percentage"] == 15
    assert alpha["max_over_subscription_ratio"] == 3.5
    assert alpha["thin_provisioning_support"] is True
    assert alpha["thick_provisioning_support"] is False
    assert alpha["multiattach"] is False and alpha["QoS_support"] is False
    created(driver)
    assert driver.get_volume_stats() == stats  # cached until refresh
    assert driver.get_volume_stats(refresh=True)["pools"][0]["total_volumes"] == 2


def test_stats_of_a_lost_pool(driver: FileDriver, tmp_path: pathlib.Path) -> None:
    os.rename(tmp_path / "beta", tmp_path / "beta-gone")
    stats = driver.get_volume_stats(refresh=True)
    assert stats["pools"][1]["free_capacity_gb"] == "unknown"
    assert stats["free_capacity_gb"] == stats["pools"][0]["free_capacity_gb"]


def test_full_filesystem(
    build: Build, tiny_fs: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    driver = build(pools=[f"big:{tmp_path / 'big'}", f"tiny:{tiny_fs}"])
    vol = created(driver, pool="big")
    write(volume_path(driver, vol), 0, os.urandom(16 * MiB))
    clone = volume(driver, pool="tiny")
    with pytest.raises(exception.VolumeSizeExceedsAvailableQuota) as err:
        driver.create_cloned_volume(clone, vol)
    assert isinstance(err.value.__cause__, OSError)
    assert err.value.__cause__.errno == errno.ENOSPC
    # no half-made volume under a real name, no temp file left
    assert sorted(os.listdir(tiny_fs)) == [".tmp"]
    assert os.listdir(tiny_fs / ".tmp") == []
