"""Manage and unmanage: renames in the pool, sizes, listings and paging."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest

from tests.unit.file.helpers import (
    GiB,
    created,
    pool_dir,
    read,
    snapshot,
    snapshot_path,
    volume,
    volume_path,
)
from volworker import exception
from volworker_drivers.file.driver import FileDriver

NO_PAGING: dict[str, Any] = {
    "marker": None,
    "limit": None,
    "offset": 0,
    "sort_keys": [],
    "sort_dirs": [],
}


def _plant(where: pathlib.Path, name: str, size: int) -> pathlib.Path:
    where.mkdir(parents=True, exist_ok=True)
    path = where / name
    with open(path, "wb") as f:
        f.write(b"legacy")
        f.truncate(size)
    return path


def _rows(driver: FileDriver, managed: list | None = None, **paging: Any) -> dict:
    args = {**NO_PAGING, **paging}
    rows = driver.get_manageable_volumes(managed or [], **args)
    return {r["reference"]["source-name"]: r for r in rows}


@pytest.mark.parametrize("size, gb", [(1, 1), (GiB, 1), (GiB + 1, 2), (5 * GiB, 5)])
def test_size_is_rounded_up(driver: FileDriver, size: int, gb: int) -> None:
    _plant(pool_dir(driver), "disk", size)
    assert (
        driver.manage_existing_get_size(volume(driver), {"source-name": "disk"}) == gb
    )


def test_manage_renames_and_grows_to_the_volume_size(driver: FileDriver) -> None:
    legacy = _plant(pool_dir(driver), "legacy", 10)
    vol = volume(driver, size=1)
    driver.manage_existing(vol, {"source-name": "legacy"})
    assert not legacy.exists()
    path = volume_path(driver, vol)
    assert read(path, 0, 6) == b"legacy" and os.path.getsize(path) == GiB
    # redone after a crash: the reference is gone, the volume is there
    driver.manage_existing(vol, {"source-name": "legacy"})
    assert os.path.getsize(path) == GiB


def test_manage_finishes_a_rename_cut_short(driver: FileDriver) -> None:
    legacy = _plant(pool_dir(driver), "legacy", GiB)
    vol = volume(driver)
    os.link(legacy, volume_path(driver, vol))  # crashed between link and unlink
    driver.manage_existing(vol, {"source-name": "legacy"})
    assert not legacy.exists() and volume_path(driver, vol).is_file()


def test_manage_never_replaces_a_volume(driver: FileDriver) -> None:
    existing = created(driver)
    _plant(pool_dir(driver), "legacy", GiB)
    with pytest.raises(exception.VolumeBackendAPIException, match="already exists"):
        driver.manage_existing(existing, {"source-name": "legacy"})
    assert (pool_dir(driver) / "legacy").exists()


def test_manage_refuses_an_exported_volume_file(driver: FileDriver) -> None:
    exported = created(driver)
    driver.initialize_connection(exported, {"host": "c"})
    with pytest.raises(exception.ManageExistingInvalidReference, match="exported"):
        driver.manage_existing(volume(driver), {"source-name": exported.name})
    assert _rows(driver)[exported.name]["reason_not_safe"] == "exported over NBD"
    with pytest.raises(exception.VolumeIsBusy):
        driver.unmanage(exported)


def test_unmanage_renames_and_counts_no_more(driver: FileDriver) -> None:
    vol = created(driver, 2)
    pool = driver.get_volume_stats(refresh=True)["pools"][0]
    assert pool["total_volumes"] == 1
    driver.unmanage(vol)
    released = pool_dir(driver) / f"unmanaged-{vol.name}"
    assert released.is_file() and not volume_path(driver, vol).exists()
    after = driver.get_volume_stats(refresh=True)["pools"][0]
    assert after["total_volumes"] == 0
    assert after["provisioned_capacity_gb"] == pool["provisioned_capacity_gb"]
    driver.unmanage(vol)  # redone: nothing left to do
    row = _rows(driver)[released.name]
    assert row["safe_to_manage"] is True and row["size"] == 2
    again = volume(driver, 2)
    driver.manage_existing(again, {"source-name": released.name})
    assert volume_path(driver, again).is_file()


def test_listing(driver: FileDriver) -> None:
    managed = created(driver, 3)
    _plant(pool_dir(driver), "loose", GiB + 1)
    _plant(pool_dir(driver), ".hidden", GiB)
    (pool_dir(driver) / "a-dir").mkdir()
    _plant(pool_dir(driver, "beta"), "other", GiB)
    rows = _rows(driver, [managed])
    assert set(rows) == {managed.name, "loose", "a-dir", "other"}
    assert rows[managed.name]["cinder_id"] == managed.id
    assert rows[managed.name]["safe_to_manage"] is False
    assert rows[managed.name]["reason_not_safe"] == "already managed"
    assert rows["loose"] == {
        "reference": {"source-name": "loose"},
        "size": 2,
        "safe_to_manage": True,
        "reason_not_safe": None,
        "cinder_id": None,
        "extra_info": "pool alpha",
    }
    assert rows["a-dir"]["safe_to_manage"] is False
    assert rows["other"]["extra_info"] == "pool beta"
    # without the worker's list, a volume file is just another file
    assert _rows(driver)[managed.name]["safe_to_manage"] is True


def test_paging(driver: FileDriver) -> None:
    for name, size in (("d", 1), ("a", 3), ("c", 2), ("b", 2)):
        _plant(pool_dir(driver, "beta" if name in "bd" else "alpha"), name, size * GiB)

    def names(**paging: Any) -> list[str]:
        rows = driver.get_manageable_volumes([], **{**NO_PAGING, **paging})
        return [r["reference"]["source-name"] for r in rows]

    assert names() == ["a", "b", "c", "d"]
    assert names(sort_keys=["size"], sort_dirs=["desc"]) == ["a", "b", "c", "d"]
    assert names(sort_keys=["size"]) == ["d", "b", "c", "a"]
    assert names(marker="b", limit=1) == ["c"]
    assert names(offset=3) == ["d"]


def test_manage_and_unmanage_a_snapshot(driver: FileDriver) -> None:
    vol = created(driver)
    snaps = pool_dir(driver) / ".snapshots" / vol.name
    _plant(snaps, "old-snap", GiB)
    rows = driver.get_manageable_snapshots([], **NO_PAGING)
    assert [r["source_reference"] for r in rows] == [{"source-name": vol.name}]
    snap = snapshot(driver, vol, create=False)
    assert (
        driver.manage_existing_snapshot_get_size(snap, {"source-name": "old-snap"}) == 1
    )
    driver.manage_existing_snapshot(snap, {"source-name": "old-snap"})
    assert snapshot_path(driver, snap).is_file()
    (row,) = driver.get_manageable_snapshots([snap], **NO_PAGING)
    assert row["cinder_id"] == snap.id and row["safe_to_manage"] is False
    with pytest.raises(exception.VolumeIsBusy, match="snapshots"):
        driver.delete_volume(vol)

    driver.unmanage_snapshot(snap)
    assert (snaps / f"unmanaged-{snap.name}").is_file()
    driver.delete_volume(vol)  # an unmanaged snapshot does not hold it
    (row,) = driver.get_manageable_snapshots([], **NO_PAGING)
    assert row["safe_to_manage"] is False
    assert f"{vol.name} is not in pool alpha" in row["reason_not_safe"]


def test_manage_a_snapshot_of_a_missing_volume(driver: FileDriver) -> None:
    vol = volume(driver)
    _plant(pool_dir(driver) / ".snapshots" / vol.name, "old-snap", GiB)
    with pytest.raises(exception.VolumeNotFound):
        driver.manage_existing_snapshot(
            snapshot(driver, vol, create=False), {"source-name": "old-snap"}
        )
    with pytest.raises(exception.ManageExistingInvalidReference):
        driver.manage_existing_snapshot_get_size(
            snapshot(driver, created(driver), create=False), {"source-name": "old-snap"}
        )
