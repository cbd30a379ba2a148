"""Clones: copy-on-write, flattened past rbd_max_clone_depth or with
rbd_flatten_volume_from_snapshot, and multiattach features."""

from __future__ import annotations

from tests.unit.rbd.conftest import Build, MiB, Pool, snapshot, volume
from volworker_drivers.rbd.driver import RBDDriver


def test_clones_past_the_depth_limit_are_flattened(build: Build, pool: Pool) -> None:
    driver = build(rbd_max_clone_depth=2)
    chain = [volume()]
    driver.create_volume(chain[0])
    pool.write(chain[0].name, b"\x42" * MiB)
    for _ in range(3):
        chain.append(volume())
        driver.create_cloned_volume(chain[-1], chain[-2])
    assert pool.parent(chain[1].name) is not None
    assert pool.parent(chain[2].name) is not None
    assert pool.parent(chain[3].name) is None  # depth 3 > 2: flattened
    assert pool.read(chain[3].name, MiB) == b"\x42" * MiB
    # the flat clone's snapshot of its source is gone with the need for it
    assert pool.snapshots(chain[2].name) == set()


def test_depth_zero_copies_every_clone(build: Build, pool: Pool) -> None:
    driver = build(rbd_max_clone_depth=0)
    source, clone = volume(), volume(size=2)
    driver.create_volume(source)
    pool.write(source.name, b"\x42" * MiB)
    driver.create_cloned_volume(clone, source)
    assert pool.parent(clone.name) is None
    assert pool.snapshots(source.name) == set()
    assert pool.read(clone.name, MiB) == b"\x42" * MiB


def test_flatten_volume_from_snapshot(build: Build, pool: Pool) -> None:
    driver = build(rbd_flatten_volume_from_snapshot=True)
    source = volume()
    driver.create_volume(source)
    pool.write(source.name, b"\x24" * MiB)
    snap = snapshot(source)
    driver.create_snapshot(snap)
    child = volume()
    driver.create_volume_from_snapshot(child, snap)
    assert pool.parent(child.name) is None
    assert pool.read(child.name, MiB) == b"\x24" * MiB
    driver.delete_snapshot(snap)  # nothing hangs from it: removed outright
    assert pool.snapshots(source.name) == set()


def test_multiattach_volumes_have_no_exclusive_lock(
    driver: RBDDriver, pool: Pool
) -> None:
    import rbd

    plain, shared = volume(), volume(multiattach=True)
    driver.create_volume(plain)
    driver.create_volume(shared)
    with rbd.Image(pool.ioctx, plain.name, read_only=True) as image:
        assert image.features() & rbd.RBD_FEATURE_EXCLUSIVE_LOCK
    with rbd.Image(pool.ioctx, shared.name, read_only=True) as image:
        assert not image.features() & rbd.RBD_FEATURE_EXCLUSIVE_LOCK
        assert image.features() & rbd.RBD_FEATURE_LAYERING
