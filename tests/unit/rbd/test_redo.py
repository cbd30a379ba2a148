"""What a kill -9 can leave, and the redo (or the next start) that finishes
it: no half-made image, no orphaned snapshot, no kept image without clones."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.rbd.conftest import Build, GiB, MiB, Pool, snapshot, volume
from volworker import exception
from volworker_drivers.rbd.driver import RBDDriver


def test_a_half_made_volume_is_replaced_by_the_redo(
    driver: RBDDriver, pool: Pool
) -> None:
    import rbd

    new = volume(size=2)
    rbd.RBD().create(pool.ioctx, f"{new.name}.creating", GiB)
    pool.write(f"{new.name}.creating", b"stale")
    driver.create_volume(new)
    assert pool.names() == {new.name}
    assert pool.read(new.name, 5) == bytes(5)


def test_a_clone_interrupted_after_its_snapshot(driver: RBDDriver, pool: Pool) -> None:
    """Killed after the source's snapshot was taken, before the clone."""
    source, clone = volume(), volume()
    driver.create_volume(source)
    with pool.rbd.Image(pool.ioctx, source.name) as image:
        image.create_snap(f"{clone.name}.clone_snap")
    driver.create_cloned_volume(clone, source)
    assert pool.parent(clone.name) == f"{source.name}@{clone.name}.clone_snap"


def test_a_failed_clone_leaves_nothing(
    driver: RBDDriver, pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """librbd fails once the clone exists (say, in its resize)."""
    source, clone = volume(), volume(size=2)
    driver.create_volume(source)
    real = driver.images.clone

    def clone_then_fail(*args: Any) -> None:
        real(*args)
        raise pool.rbd.IOError("injected")

    monkeypatch.setattr(driver.images, "clone", clone_then_fail)
    with pytest.raises(exception.VolumeBackendAPIException, match="injected"):
        driver.create_cloned_volume(clone, source)
    assert pool.objects() == {source.name}


def test_a_redone_flat_clone_drops_its_snapshot(build: Build, pool: Pool) -> None:
    """Killed after a flattened clone was renamed into place, before its
    source's snapshot was removed."""
    driver = build(rbd_max_clone_depth=0)
    source, clone = volume(), volume()
    driver.create_volume(source)
    driver.create_cloned_volume(clone, source)
    with pool.rbd.Image(pool.ioctx, source.name) as image:
        image.create_snap(f"{clone.name}.clone_snap")
    driver.create_cloned_volume(clone, source)
    assert pool.snapshots(source.name) == set()


def test_a_note_left_by_a_crash_is_collected_at_start(build: Build, pool: Pool) -> None:
    """Killed after a clone was removed, before its kept source was."""
    driver = build()
    source, clone = volume(), volume()
    driver.create_volume(source)
    driver.create_cloned_volume(clone, source)
    driver.delete_volume(source)
    with pool.rbd.Image(pool.ioctx, clone.name) as image:
        noted = driver.collector.note_parent(image)
    assert noted is not None and noted[1] in pool.notes()
    pool.rbd.RBD().remove(pool.ioctx, clone.name)
    assert pool.names() == {f"{source.name}.deleted"}

    build()  # a restarted worker's driver
    assert pool.names() == set()
    assert pool.notes() == []


def test_a_delete_interrupted_after_the_rename(driver: RBDDriver, pool: Pool) -> None:
    """Killed after the source was renamed .deleted; its clone went since."""
    source, clone = volume(), volume()
    driver.create_volume(source)
    driver.create_cloned_volume(clone, source)
    driver.delete_volume(source)
    driver.delete_volume(clone)
    driver.delete_volume(source)  # the redo of the first delete
    assert pool.names() == set()


def test_a_redone_create_keeps_the_volume(driver: RBDDriver, pool: Pool) -> None:
    target = volume()
    driver.create_volume(target)
    pool.write(target.name, b"\x33" * MiB)
    driver.create_volume(target)
    assert pool.read(target.name, MiB) == b"\x33" * MiB
    with pytest.raises(exception.VolumeBackendAPIException, match="already exists"):
        driver.create_volume(target.replace(size=2))


def test_a_half_made_snapshot_is_taken_again(driver: RBDDriver, pool: Pool) -> None:
    """Killed after the snapshot entered the header, before its object map."""
    vol = volume()
    driver.create_volume(vol)
    snap = snapshot(vol)
    driver.create_snapshot(snap)
    with pool.rbd.Image(pool.ioctx, vol.name, read_only=True) as image:
        image_id = image.id()
        snap_id = image.snap_get_id(snap.name)
    pool.ioctx.remove_object(f"rbd_object_map.{image_id}.{snap_id:016x}")
    driver.create_snapshot(snap)  # the redo
    with pool.rbd.Image(pool.ioctx, vol.name, snapshot=snap.name, read_only=True):
        pass
