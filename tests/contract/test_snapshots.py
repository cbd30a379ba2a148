"""Snapshots: create, delete, revert."""

from __future__ import annotations

from tests.contract.conftest import Backend
from volworker.context import RequestContext
from volworker.driver import Feature


def test_create_and_delete(backend: Backend) -> None:
    volume = backend.create()
    snapshot = backend.snapshot(volume)
    assert snapshot.name in backend.harness.backend_objects(backend.driver)
    backend.driver.delete_snapshot(snapshot)
    assert snapshot.name not in backend.harness.backend_objects(backend.driver)
    backend.driver.delete_snapshot(snapshot)  # already gone is success


def test_several_snapshots_are_independent(backend: Backend) -> None:
    volume = backend.create()
    first, second = backend.snapshot(volume), backend.snapshot(volume)
    backend.driver.delete_snapshot(first)
    objects = backend.harness.backend_objects(backend.driver)
    assert second.name in objects and first.name not in objects


def test_revert_keeps_the_volume(backend: Backend) -> None:
    backend.require(Feature.REVERT_TO_SNAPSHOT)
    volume = backend.create(size=1)
    snapshot = backend.snapshot(volume)
    backend.driver.extend_volume(volume, 2)
    volume = volume.replace(size=2)
    backend.driver.revert_to_snapshot(RequestContext(), volume, snapshot)
    objects = backend.harness.backend_objects(backend.driver)
    assert {volume.name, snapshot.name} <= objects
