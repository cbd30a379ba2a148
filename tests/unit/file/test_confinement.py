"""Nothing outside a pool is ever touched: ids must be UUIDs, symlinks planted
in a pool are refused (never followed), manage references are plain names."""

from __future__ import annotations

import hashlib
import os
import pathlib
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.file.helpers import (
    GiB,
    created,
    pool_dir,
    snapshot,
    volume,
    volume_path,
)
from volworker import exception
from volworker.context import RequestContext
from volworker.image import LocalImageService
from volworker.objects import Snapshot, Volume
from volworker_drivers.file.driver import FileDriver

CTX = RequestContext()
BAD_IDS = [
    "../../etc",
    "..",
    "volume-1",
    "",
    "/etc/passwd",
    str(uuid.uuid4()).upper(),
    "{" + str(uuid.uuid4()) + "}",
    str(uuid.uuid4()).replace("-", ""),
]


class Outside:
    """A file outside every pool, and proof that it did not change."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        path.write_bytes(b"do not touch" * 1000)
        self.before = self.state()

    def state(self) -> tuple[int, int, str]:
        st = os.stat(self.path)
        return (
            st.st_size,
            st.st_mtime_ns,
            hashlib.sha256(self.path.read_bytes()).hexdigest(),
        )

    def untouched(self) -> bool:
        return self.state() == self.before


@pytest.fixture
def outside(tmp_path: pathlib.Path) -> Outside:
    return Outside(tmp_path / "outside.img")


def _with_id(driver: FileDriver, volume_id: str) -> Volume:
    return volume(driver).replace(id=volume_id)


@pytest.mark.parametrize("bad", BAD_IDS)
def test_volume_ids_must_be_uuids(driver: FileDriver, bad: str) -> None:
    vol = _with_id(driver, bad)
    good = created(driver)
    calls: list[Callable[[], Any]] = [
        lambda: driver.create_volume(vol),
        lambda: driver.delete_volume(vol),
        lambda: driver.extend_volume(vol, 2),
        lambda: driver.create_cloned_volume(vol, good),
        lambda: driver.create_cloned_volume(volume(driver), vol),
        lambda: driver.initialize_connection(vol, {"host": "c"}),
        lambda: driver.terminate_connection(vol, None),
        lambda: driver.create_snapshot(Snapshot(str(uuid.uuid4()), bad, vol)),
        lambda: driver.create_snapshot(Snapshot(bad, good.id, good)),
        lambda: driver.delete_snapshot(Snapshot(bad, good.id, good)),
        lambda: driver.manage_existing(vol, {"source-name": good.name}),
    ]
    for call in calls:
        with pytest.raises(exception.InvalidInput, match="not a UUID"):
            call()
    assert sorted(os.listdir(pool_dir(driver))) == sorted([".tmp", good.name])


def _plant_volume_link(driver: FileDriver, outside: Outside) -> Volume:
    vol = volume(driver)
    volume_path(driver, vol).symlink_to(outside.path)
    return vol


def _ops_on_a_planted_volume(
    driver: FileDriver, vol: Volume, images: LocalImageService
) -> dict[str, Callable[[], Any]]:
    image_id = str(uuid.uuid4())
    return {
        "create": lambda: driver.create_volume(vol.replace(size=2)),
        "delete": lambda: driver.delete_volume(vol),
        "extend": lambda: driver.extend_volume(vol, 2),
        "snapshot": lambda: driver.create_snapshot(snapshot(driver, vol, False)),
        "clone": lambda: driver.create_cloned_volume(volume(driver), vol),
        "attach": lambda: driver.initialize_connection(vol, {"host": "c"}),
        "ensure": lambda: driver.ensure_export(CTX, vol),
        "to image": lambda: driver.copy_volume_to_image(
            CTX, vol, images, {"id": image_id, "disk_format": "raw"}
        ),
        "unmanage": lambda: driver.unmanage(vol),
    }


def test_symlink_planted_as_a_volume_is_never_followed(
    driver: FileDriver, outside: Outside, tmp_path: pathlib.Path
) -> None:
    vol = _plant_volume_link(driver, outside)
    images = LocalImageService(str(tmp_path / "images"))
    for what, call in _ops_on_a_planted_volume(driver, vol, images).items():
        with pytest.raises(exception.VolumeBackendAPIException, match="symbolic link"):
            call()
        assert outside.untouched(), what
        assert volume_path(driver, vol).is_symlink(), what
    assert driver.exports.exports() == []
    assert not (tmp_path / "images").exists() or not os.listdir(tmp_path / "images")
    assert not (pool_dir(driver) / ".snapshots").exists() or not list(
        (pool_dir(driver) / ".snapshots").rglob("snapshot-*")
    )


def test_symlink_planted_as_a_volume_is_not_managed(
    driver: FileDriver, outside: Outside
) -> None:
    vol = _plant_volume_link(driver, outside)
    other = volume(driver)
    for call in (
        lambda: driver.manage_existing(other, {"source-name": vol.name}),
        lambda: driver.manage_existing_get_size(other, {"source-name": vol.name}),
    ):
        with pytest.raises(exception.ManageExistingInvalidReference, match="symbolic"):
            call()
    assert outside.untouched() and volume_path(driver, vol).is_symlink()
    listed = driver.get_manageable_volumes([], None, None, 0, [], [])
    (row,) = [r for r in listed if r["reference"]["source-name"] == vol.name]
    assert row["safe_to_manage"] is False and row["size"] == 0
    assert "symbolic link" in row["reason_not_safe"]


@pytest.mark.parametrize("planted", [".snapshots", ".snapshots/VOLUME", ".tmp"])
def test_symlinked_directories_are_never_followed(
    driver: FileDriver, tmp_path: pathlib.Path, planted: str
) -> None:
    vol = created(driver)
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = pool_dir(driver) / planted.replace("VOLUME", vol.name)
    link.parent.mkdir(exist_ok=True)
    if link.exists():
        os.rmdir(link)
    link.symlink_to(target)
    with pytest.raises(exception.VolumeBackendAPIException, match="symbolic link"):
        driver.create_snapshot(snapshot(driver, vol, False))
    if planted == ".tmp":
        with pytest.raises(exception.VolumeBackendAPIException, match="symbolic link"):
            driver.create_volume(volume(driver))
    assert os.listdir(target) == []


def test_symlink_planted_as_a_snapshot(driver: FileDriver, outside: Outside) -> None:
    vol = created(driver)
    snap = snapshot(driver, vol, create=False)
    snaps = pool_dir(driver) / ".snapshots" / vol.name
    snaps.mkdir(parents=True)
    (snaps / snap.name).symlink_to(outside.path)
    for call in (
        lambda: driver.delete_snapshot(snap),
        lambda: driver.create_volume_from_snapshot(volume(driver), snap),
        lambda: driver.revert_to_snapshot(CTX, vol, snap),
        lambda: driver.delete_volume(vol),  # it has a "snapshot": refused
    ):
        with pytest.raises(exception.VolworkerError):
            call()
    assert outside.untouched() and (snaps / snap.name).is_symlink()
    assert os.path.getsize(volume_path(driver, vol)) == GiB


def test_fifo_planted_as_a_volume_does_not_hang(driver: FileDriver) -> None:
    vol = volume(driver)
    os.mkfifo(volume_path(driver, vol))
    for call in (
        lambda: driver.create_snapshot(snapshot(driver, vol, False)),
        lambda: driver.initialize_connection(vol, {"host": "c"}),
        lambda: driver.extend_volume(vol, 2),
    ):
        with pytest.raises(exception.VolumeBackendAPIException, match="regular file"):
            call()


@pytest.mark.parametrize(
    "ref",
    [
        {"source-name": "../outside.img"},
        {"source-name": "a/b"},
        {"source-name": ".."},
        {"source-name": ".tmp"},
        {"source-name": ".snapshots"},
        {"source-name": ""},
        {"source-name": 7},
        {"source-id": "abc"},
        {},
        "plain string",
    ],
)
def test_manage_references_are_plain_names(
    driver: FileDriver, outside: Outside, ref: Any
) -> None:
    vol = volume(driver)
    with pytest.raises(exception.ManageExistingInvalidReference):
        driver.manage_existing_get_size(vol, ref)
    with pytest.raises(exception.ManageExistingInvalidReference):
        driver.manage_existing(vol, ref)
    assert outside.untouched()
    assert not volume_path(driver, vol).exists()


@pytest.mark.parametrize("kind", ["dir", "fifo"])
def test_manage_refuses_what_is_not_a_file(driver: FileDriver, kind: str) -> None:
    path = pool_dir(driver) / "odd"
    os.mkdir(path) if kind == "dir" else os.mkfifo(path)
    with pytest.raises(exception.ManageExistingInvalidReference, match="regular file"):
        driver.manage_existing(volume(driver), {"source-name": "odd"})
    assert os.path.lexists(path)
