"""Volumes: create, delete, clone, extend, and what delete must refuse."""

from __future__ import annotations

import pytest

from tests.contract.conftest import Backend, apply
from volworker import exception


def _pool_names(backend: Backend) -> list[str]:
    stats = backend.driver.get_volume_stats(refresh=True)
    return [pool["pool_name"] for pool in stats["pools"]]


def test_create_and_delete(backend: Backend) -> None:
    volume = backend.create()
    assert volume.name in backend.harness.backend_objects(backend.driver)
    backend.driver.delete_volume(volume)
    assert volume.name not in backend.harness.backend_objects(backend.driver)


def test_delete_of_a_missing_volume_succeeds(backend: Backend) -> None:
    backend.driver.delete_volume(backend.volume())


def test_create_is_idempotent(backend: Backend) -> None:
    # NOTE: the worker redoes a journaled create after a crash.
    volume = backend.create(size=2)
    apply(volume, backend.driver.create_volume(volume))
    assert volume.name in backend.harness.backend_objects(backend.driver)


def test_create_in_each_pool(backend: Backend) -> None:
    for name in _pool_names(backend):
        volume = backend.create(pool=name)
        assert volume.name in backend.harness.backend_objects(backend.driver)


def test_create_in_unknown_pool_fails(backend: Backend) -> None:
    with pytest.raises((exception.InvalidInput, exception.VolumeBackendAPIException)):
        backend.driver.create_volume(backend.volume(pool="no-such-pool"))


def test_clone_may_be_larger(backend: Backend) -> None:
    source = backend.create(size=1)
    clone = backend.volume(size=2)
    clone = apply(clone, backend.driver.create_cloned_volume(clone, source))
    assert {source.name, clone.name} <= backend.harness.backend_objects(backend.driver)
    backend.driver.delete_volume(source)
    assert clone.name in backend.harness.backend_objects(backend.driver)


def test_create_from_snapshot_may_be_larger(backend: Backend) -> None:
    source = backend.create(size=1)
    snapshot = backend.snapshot(source)
    volume = backend.volume(size=3)
    volume = apply(volume, backend.driver.create_volume_from_snapshot(volume, snapshot))
    assert volume.name in backend.harness.backend_objects(backend.driver)


def test_extend(backend: Backend) -> None:
    volume = backend.create(size=1)
    backend.driver.extend_volume(volume, 4)
    volume = volume.replace(size=4)
    backend.driver.extend_volume(volume, 4)  # the same size again is no change


def test_delete_refused_while_snapshots_exist(backend: Backend) -> None:
    volume = backend.create()
    snapshot = backend.snapshot(volume)
    with pytest.raises(exception.VolumeIsBusy):
        backend.driver.delete_volume(volume)
    backend.driver.delete_snapshot(snapshot)
    backend.driver.delete_volume(volume)
    assert volume.name not in backend.harness.backend_objects(backend.driver)


def test_delete_refused_while_exported(backend: Backend) -> None:
    volume = backend.create()
    backend.attach(volume)
    with pytest.raises(exception.VolumeIsBusy):
        backend.driver.delete_volume(volume)
    assert volume.name in backend.harness.backend_objects(backend.driver)
    backend.detach(volume)
    backend.driver.delete_volume(volume)
