"""Manage and unmanage, and listing what could be managed."""

from __future__ import annotations

import pytest

from tests.contract.conftest import Backend, apply
from volworker import exception
from volworker.driver import Feature
from volworker.objects import Snapshot

LIST_ARGS = {
    "marker": None,
    "limit": None,
    "offset": 0,
    "sort_keys": [],
    "sort_dirs": [],
}


def _entry(entries: list[dict], name: str) -> dict:
    found = [e for e in entries if e["reference"].get("source-name") == name]
    assert len(found) == 1, entries
    return found[0]


def test_manage_and_unmanage_volume(backend: Backend) -> None:
    backend.require(Feature.MANAGE_VOLUMES)
    ref = backend.harness.plant_volume(backend.driver, "legacy-disk", 2)
    listed = _entry(
        backend.driver.get_manageable_volumes([], **LIST_ARGS), "legacy-disk"
    )
    assert listed["safe_to_manage"] is True
    assert listed["size"] == 2

    volume = backend.volume(size=1)
    assert backend.driver.manage_existing_get_size(volume, ref) == 2
    volume = apply(volume.replace(size=2), backend.driver.manage_existing(volume, ref))
    objects = backend.harness.backend_objects(backend.driver)
    assert volume.name in objects

    entries = backend.driver.get_manageable_volumes([volume], **LIST_ARGS)
    managed = [e for e in entries if e["cinder_id"] == volume.id]
    assert len(managed) == 1 and managed[0]["safe_to_manage"] is False
    assert managed[0]["reason_not_safe"]

    backend.driver.unmanage(volume)
    # the backend object stays; only the worker forgets it
    assert len(backend.harness.backend_objects(backend.driver)) == len(objects)


def test_manage_rejects_bad_references(backend: Backend) -> None:
    backend.require(Feature.MANAGE_VOLUMES)
    volume = backend.volume()
    for ref in ({"source-name": "no-such-object"}, {}, {"source-name": "../etc"}):
        with pytest.raises(exception.ManageExistingInvalidReference):
            backend.driver.manage_existing_get_size(volume, ref)
        with pytest.raises(exception.ManageExistingInvalidReference):
            backend.driver.manage_existing(volume, ref)


def test_manageable_paging(backend: Backend) -> None:
    backend.require(Feature.MANAGE_VOLUMES)
    for name, size in (("d-a", 3), ("d-b", 1), ("d-c", 2), ("d-d", 1)):
        backend.harness.plant_volume(backend.driver, name, size)

    def names(**kw: object) -> list[str]:
        args = {**LIST_ARGS, **kw}
        entries = backend.driver.get_manageable_volumes([], **args)
        return [e["reference"]["source-name"] for e in entries]

    assert names(sort_keys=["identifier"], sort_dirs=["asc"]) == [
        "d-a",
        "d-b",
        "d-c",
        "d-d",
    ]
    assert names(sort_keys=["identifier"], sort_dirs=["desc"]) == [
        "d-d",
        "d-c",
        "d-b",
        "d-a",
    ]
    assert names(sort_keys=["size", "identifier"], sort_dirs=["desc", "asc"]) == [
        "d-a",
        "d-c",
        "d-b",
        "d-d",
    ]
    assert names(marker="d-b", sort_keys=["identifier"]) == ["d-c", "d-d"]
    assert names(offset=1, limit=2, sort_keys=["identifier"]) == ["d-b", "d-c"]
    with pytest.raises(exception.InvalidInput):
        names(sort_keys=["colour"])


def test_manage_and_unmanage_snapshot(backend: Backend) -> None:
    backend.require(Feature.MANAGE_SNAPSHOTS)
    volume = backend.create(size=1)
    ref = backend.harness.plant_snapshot(backend.driver, volume.name, "legacy-snap")
    entries = backend.driver.get_manageable_snapshots([], **LIST_ARGS)
    listed = _entry(entries, "legacy-snap")
    assert listed["safe_to_manage"] is True
    assert listed["source_reference"]

    snapshot = Snapshot(id=backend.volume().id, volume_id=volume.id, volume=volume)
    assert backend.driver.manage_existing_snapshot_get_size(snapshot, ref) == 1
    snapshot = apply(snapshot, backend.driver.manage_existing_snapshot(snapshot, ref))
    objects = backend.harness.backend_objects(backend.driver)
    assert snapshot.name in objects
    with pytest.raises(exception.VolumeIsBusy):
        backend.driver.delete_volume(volume)
    backend.driver.unmanage_snapshot(snapshot)
    # the backend object stays; only the worker forgets it
    assert len(backend.harness.backend_objects(backend.driver)) == len(objects)
