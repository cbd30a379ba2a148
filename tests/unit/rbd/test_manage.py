"""Manage and the manageable listings: images clients have open, and the
driver's own states, are never offered."""

from __future__ import annotations

import pytest

from tests.unit.rbd.conftest import GiB, Pool, volume
from volworker import exception
from volworker_drivers.rbd.driver import RBDDriver

LIST = {"marker": None, "limit": None, "offset": 0, "sort_keys": [], "sort_dirs": []}


def test_open_images_are_not_safe_to_manage(driver: RBDDriver, pool: Pool) -> None:
    pool.rbd.RBD().create(pool.ioctx, "in-use", GiB)
    with pool.rbd.Image(pool.ioctx, "in-use") as image:  # a client has it open
        image.write(b"x", 0)
        (row,) = driver.get_manageable_volumes([], **LIST)
        assert row["safe_to_manage"] is False
        assert "open by 1 client" in row["reason_not_safe"]
        with pytest.raises(exception.ManageExistingInvalidReference):
            driver.manage_existing(volume(), {"source-name": "in-use"})
    (row,) = driver.get_manageable_volumes([], **LIST)
    assert row["safe_to_manage"] is True


def test_kept_and_half_made_images_are_not_listed(
    driver: RBDDriver, pool: Pool
) -> None:
    source = volume()
    driver.create_volume(source)
    driver.create_cloned_volume(volume(), source)
    driver.delete_volume(source)
    pool.rbd.RBD().create(pool.ioctx, f"volume-{source.id}.creating", GiB)
    listed = {
        r["reference"]["source-name"] for r in driver.get_manageable_volumes([], **LIST)
    }
    assert not any(name.endswith((".deleted", ".creating")) for name in listed)
    with pytest.raises(exception.ManageExistingInvalidReference):
        driver.manage_existing(volume(), {"source-name": f"{source.name}.deleted"})
    snaps = driver.get_manageable_snapshots([], **LIST)
    assert not any(r["reference"]["source-name"].endswith(".clone_snap") for r in snaps)


def test_unmanage_keeps_the_image_under_another_name(
    driver: RBDDriver, pool: Pool
) -> None:
    vol = volume()
    driver.create_volume(vol)
    driver.unmanage(vol)
    assert pool.names() == {f"unmanaged-{vol.name}"}
    adopted = volume(size=1)
    driver.manage_existing(adopted, {"source-name": f"unmanaged-{vol.name}"})
    assert pool.names() == {adopted.name}
    driver.manage_existing(adopted, {"source-name": f"unmanaged-{vol.name}"})  # redo
