"""Real data through real NBD exports: snapshots, clones, reverts and deletes
keep the bytes they should and never show bytes they should not."""

from __future__ import annotations

from tests.contract import blockclient
from tests.contract.conftest import Backend, apply
from volworker.context import RequestContext
from volworker.driver import Feature

MiB = 1024**2
GiB = 1024**3


def test_written_bytes_read_back(data_backend: Backend) -> None:
    volume = data_backend.create(size=1)
    info = data_backend.attach(volume)
    assert blockclient.size(info) == GiB
    blockclient.write(info, 0, MiB, 0xA1)
    blockclient.write(info, GiB - MiB, MiB, 0xA2)
    assert blockclient.holds(info, 0, MiB, 0xA1)
    assert blockclient.holds(info, GiB - MiB, MiB, 0xA2)
    assert blockclient.holds(info, MiB, 64 * MiB, 0)


def test_snapshot_and_clones_keep_their_point_in_time(data_backend: Backend) -> None:
    b = data_backend
    volume = b.create(size=1)
    info = b.attach(volume)
    blockclient.write(info, 0, 4 * MiB, 0x11)
    snapshot = b.snapshot(volume)  # taken while exported
    blockclient.write(info, 0, 4 * MiB, 0x22)

    from_snapshot = b.volume(size=2)
    from_snapshot = apply(
        from_snapshot, b.driver.create_volume_from_snapshot(from_snapshot, snapshot)
    )
    snap_info = b.attach(from_snapshot)
    assert blockclient.size(snap_info) == 2 * GiB
    assert blockclient.holds(snap_info, 0, 4 * MiB, 0x11)
    assert blockclient.holds(snap_info, GiB, MiB, 0)

    b.detach(volume)
    clone = b.volume(size=1)
    clone = apply(clone, b.driver.create_cloned_volume(clone, volume))
    clone_info = b.attach(clone)
    assert blockclient.holds(clone_info, 0, 4 * MiB, 0x22)
    # the copies are independent of each other and of the source
    blockclient.write(clone_info, 0, MiB, 0x33)
    assert blockclient.holds(snap_info, 0, MiB, 0x11)
    info = b.attach(volume)
    assert blockclient.holds(info, 0, MiB, 0x22)


def test_revert_restores_the_snapshot(data_backend: Backend) -> None:
    data_backend.require(Feature.REVERT_TO_SNAPSHOT)
    b = data_backend
    volume = b.create(size=1)
    info = b.attach(volume)
    blockclient.write(info, 0, MiB, 0x44)
    snapshot = b.snapshot(volume)
    blockclient.write(info, 0, MiB, 0x55)
    b.detach(volume)
    b.driver.revert_to_snapshot(RequestContext(), volume, snapshot)
    info = b.attach(volume)
    assert blockclient.holds(info, 0, MiB, 0x44)
    assert blockclient.size(info) == GiB


def test_extend_is_seen_by_a_new_connection(data_backend: Backend) -> None:
    b = data_backend
    volume = b.create(size=1)
    blockclient.write(b.attach(volume), GiB - MiB, MiB, 0x66)
    b.detach(volume)
    b.driver.extend_volume(volume, 2)
    info = b.attach(volume.replace(size=2))
    assert blockclient.size(info) == 2 * GiB
    assert blockclient.holds(info, GiB - MiB, MiB, 0x66)
    assert blockclient.holds(info, GiB, MiB, 0)


def test_new_volume_never_reads_a_deleted_volumes_bytes(data_backend: Backend) -> None:
    b = data_backend
    pool = b.driver.get_volume_stats(refresh=True)["pools"][0]["pool_name"]
    old = b.create(size=1, pool=pool)
    info = b.attach(old)
    blockclient.write(info, 0, 64 * MiB, 0x77)
    b.detach(old)
    b.driver.delete_volume(old)
    for _ in range(3):
        new = b.create(size=1, pool=pool)
        assert blockclient.holds(b.attach(new), 0, GiB, 0)
