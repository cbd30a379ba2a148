"""Deleting what clones hang from: kept (``.deleted``) and removed with the
last clone, never breaking a clone and never copying data."""

from __future__ import annotations

import pytest

from tests.unit.rbd.conftest import MiB, Pool, snapshot, volume
from volworker import exception
from volworker_drivers.rbd.driver import RBDDriver


def test_deleting_a_source_keeps_it_for_its_clone(
    driver: RBDDriver, pool: Pool
) -> None:
    source = volume()
    driver.create_volume(source)
    pool.write(source.name, b"\x5a" * MiB)
    clone = volume()
    driver.create_cloned_volume(clone, source)
    assert pool.parent(clone.name) == f"{source.name}@{clone.name}.clone_snap"

    driver.delete_volume(source)
    assert source.name not in pool.names()
    assert f"{source.name}.deleted" in pool.names()
    assert pool.read(clone.name, MiB) == b"\x5a" * MiB

    driver.delete_volume(clone)
    assert pool.names() == set()
    assert pool.notes() == []


def test_deleting_a_snapshot_keeps_it_for_its_clone(
    driver: RBDDriver, pool: Pool
) -> None:
    source = volume()
    driver.create_volume(source)
    pool.write(source.name, b"\x11" * MiB)
    snap = snapshot(source)
    driver.create_snapshot(snap)
    child = volume(size=2)
    driver.create_volume_from_snapshot(child, snap)
    pool.write(source.name, b"\x22" * MiB)

    driver.delete_snapshot(snap)
    assert pool.snapshots(source.name) == {f"{snap.name}.deleted"}
    driver.delete_snapshot(snap)  # a redo finds it kept and leaves it
    # the volume has only a kept snapshot left: it is kept in turn
    driver.delete_volume(source)
    assert pool.names() == {f"{source.name}.deleted", child.name}
    assert pool.read(child.name, MiB) == b"\x11" * MiB

    driver.delete_volume(child)
    assert pool.names() == set()


def test_a_chain_goes_with_its_last_clone(driver: RBDDriver, pool: Pool) -> None:
    first = volume()
    driver.create_volume(first)
    second, third = volume(), volume()
    driver.create_cloned_volume(second, first)
    driver.create_cloned_volume(third, second)
    driver.delete_volume(first)
    driver.delete_volume(second)
    assert pool.names() == {
        f"{first.name}.deleted",
        f"{second.name}.deleted",
        third.name,
    }
    driver.delete_volume(third)
    assert pool.names() == set()


def test_user_snapshots_still_refuse_a_delete(driver: RBDDriver, pool: Pool) -> None:
    source = volume()
    driver.create_volume(source)
    snap = snapshot(source)
    driver.create_snapshot(snap)
    driver.create_cloned_volume(volume(), source)
    with pytest.raises(exception.VolumeIsBusy, match=snap.name):
        driver.delete_volume(source)
    assert source.name in pool.names()


def test_attached_volume_refuses_delete_and_revert(
    driver: RBDDriver, pool: Pool
) -> None:
    source = volume()
    driver.create_volume(source)
    snap = snapshot(source)
    driver.create_snapshot(snap)
    driver.initialize_connection(source, {"host": "compute-1"})
    with pytest.raises(exception.VolumeIsBusy, match="compute-1"):
        driver.revert_to_snapshot(None, source, snap)  # type: ignore[arg-type]
    driver.delete_snapshot(snap)
    with pytest.raises(exception.VolumeIsBusy, match="compute-1"):
        driver.delete_volume(source)
    driver.terminate_connection(source, None)
    driver.delete_volume(source)
    assert pool.names() == set()
