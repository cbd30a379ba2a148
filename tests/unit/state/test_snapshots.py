"""Repository functions of snapshots and attachments."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from tests.unit.state.conftest import new_id, volume_fields
from volworker import exception, objects
from volworker.state import api

SNAPSHOT_KEYS = {
    "id",
    "status",
    "size",
    "volume_id",
    "name",
    "metadata",
    "created_at",
    "updated_at",
}


@pytest.fixture
def volume(call: Any) -> dict[str, Any]:
    return call(api.add_volume, **volume_fields(size=4))


def _snapshot(volume: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"id": new_id(), "volume_id": volume["id"], "status": "creating"} | fields


def test_add_snapshot_takes_size_and_service_from_its_volume(
    call: Any, volume: dict[str, Any]
) -> None:
    fields = _snapshot(volume, display_name="snap", metadata={"k": 1})
    added = call(api.add_snapshot, **fields)
    assert set(added) == SNAPSHOT_KEYS
    assert (added["size"], added["name"], added["metadata"]) == (4, "snap", {"k": 1})
    assert call(lambda s: api.get_snapshot(s, fields["id"]).service) == "host1@lvm"
    assert call(api.get_snapshot_dict, fields["id"]) == added
    assert json.loads(json.dumps(added)) == added


def test_snapshot_of_a_missing_volume_needs_its_size(call: Any) -> None:
    with pytest.raises(exception.VolumeNotFound):
        call(api.add_snapshot, id=new_id(), volume_id=new_id(), status="creating")


def test_snapshot_record_shows_error_only_when_failed(
    call: Any, volume: dict[str, Any]
) -> None:
    fields = _snapshot(volume, error="no space")
    assert "error" not in call(api.add_snapshot, **fields)
    assert (
        call(api.update_snapshot, fields["id"], status="error")["error"] == "no space"
    )


def test_missing_snapshot_raises_snapshot_not_found(call: Any) -> None:
    missing = new_id()
    for fn in (api.get_snapshot_dict, api.update_snapshot, api.snapshot_object):
        with pytest.raises(exception.SnapshotNotFound) as info:
            call(fn, missing)
        assert info.value.kwargs == {"snapshot_id": missing}
    assert call(api.get_snapshot, missing) is None
    assert call(api.delete_snapshot, missing) is False


def test_list_count_update_delete(call: Any, volume: dict[str, Any]) -> None:
    ids = [call(api.add_snapshot, **_snapshot(volume))["id"] for _ in range(3)]
    other = call(api.add_volume, **volume_fields())
    call(api.add_snapshot, **_snapshot(other))
    assert [s["id"] for s in call(api.list_snapshots, volume["id"])] == ids
    assert call(api.count_snapshots, volume["id"]) == 3
    updated = call(api.update_snapshot, ids[0], status="available")
    assert updated["status"] == "available"
    assert updated["updated_at"] > updated["created_at"]
    assert call(api.delete_snapshot, ids[0]) is True
    assert call(api.count_snapshots, volume["id"]) == 2
    assert call(api.count_snapshots, new_id()) == 0


def test_to_snapshot_builds_the_driver_object(
    call: Any, volume: dict[str, Any]
) -> None:
    fields = _snapshot(volume, provider_location="loc")
    call(api.add_snapshot, **fields)
    call(api.update_volume, volume["id"], size=10)
    snapshot = call(api.snapshot_object, fields["id"])
    assert isinstance(snapshot, objects.Snapshot)
    assert snapshot.name == f"snapshot-{fields['id']}"
    assert snapshot.volume.id == volume["id"]
    assert snapshot.volume.size == 10
    assert snapshot.volume_size == 4
    assert snapshot.provider_location == "loc"


def test_attachments(call: Any, volume: dict[str, Any]) -> None:
    vid = volume["id"]
    first = call(api.add_attachment, vid, {"host": "c1"}, connection_info={"a": 1})
    assert set(first) == {
        "id",
        "volume_id",
        "connector_host",
        "connector",
        "connection_info",
        "created_at",
    }
    call(api.add_attachment, vid, {"host": "c2"})
    call(api.add_attachment, vid, {"ip": "10.0.0.3"}, connector_host="c3")
    assert call(api.get_attachment, vid, "c1") == first
    assert call(api.get_attachment, vid, "nowhere") is None
    hosts = [a["connector_host"] for a in call(api.list_attachments, vid)]
    assert hosts == ["c1", "c2", "c3"]
    assert call(api.delete_attachment, vid, "c2") == 1
    assert call(api.delete_attachment, vid, "c2") == 0
    assert call(api.delete_attachment, vid) == 2
    assert call(api.list_attachments, vid) == []


def test_one_attachment_per_volume_and_host(call: Any, volume: dict[str, Any]) -> None:
    call(api.add_attachment, volume["id"], {"host": "c1"})
    with pytest.raises(sa.exc.IntegrityError):
        call(api.add_attachment, volume["id"], {"host": "c1", "multipath": True})
    other = call(api.add_volume, **volume_fields())
    call(api.add_attachment, other["id"], {"host": "c1"})


def test_attachment_needs_a_host(call: Any, volume: dict[str, Any]) -> None:
    with pytest.raises(exception.InvalidInput):
        call(api.add_attachment, volume["id"], {"ip": "10.0.0.1"})
