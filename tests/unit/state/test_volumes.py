"""Repository functions of volumes: records, paging, placement, allocations."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa

from tests.unit.state.conftest import new_id, volume_fields
from volworker import exception, objects
from volworker.state import api

RECORD_KEYS = {
    "id",
    "status",
    "size",
    "host",
    "name",
    "metadata",
    "created_at",
    "updated_at",
}


def _utc(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.utcoffset() == dt.timedelta(0)
    return parsed


def test_add_and_get_return_the_contract_record(call: Any) -> None:
    fields = volume_fields(display_name="vol", metadata={"k": "v"}, size=3)
    added = call(api.add_volume, **fields)
    assert set(added) == RECORD_KEYS
    assert added == call(api.get_volume_dict, fields["id"])
    assert added["host"] == "host1@lvm#pool1"
    assert added["name"] == "vol"
    assert added["metadata"] == {"k": "v"}
    assert added["size"] == 3
    assert _utc(added["created_at"]) == _utc(added["updated_at"])
    assert json.loads(json.dumps(added)) == added


def test_error_shows_only_in_error_statuses(call: Any) -> None:
    fields = volume_fields(status="error", error="backend said no")
    assert call(api.add_volume, **fields)["error"] == "backend said no"
    record = call(api.update_volume, fields["id"], status="available")
    assert "error" not in record
    record = call(api.update_volume, fields["id"], status="error_extending")
    assert record["error"] == "backend said no"


def test_get_volume_returns_the_row_or_none(call: Any) -> None:
    fields = volume_fields()
    call(api.add_volume, **fields)
    assert (
        call(lambda s: api.get_volume(s, fields["id"]).to_dict()["id"]) == fields["id"]
    )
    assert call(api.get_volume, new_id()) is None


def test_missing_volume_raises_volume_not_found(call: Any) -> None:
    missing = new_id()
    for fn, args in (
        (api.get_volume_dict, ()),
        (api.update_volume, ()),
        (api.volume_object, ()),
    ):
        with pytest.raises(exception.VolumeNotFound) as info:
            call(fn, missing, *args)
        assert info.value.kwargs == {"volume_id": missing}


def test_update_sets_fields_and_updated_at(call: Any) -> None:
    fields = volume_fields()
    added = call(api.add_volume, **fields)
    updated = call(
        api.update_volume, fields["id"], status="in-use", size=5, metadata={"a": 1}
    )
    assert (updated["status"], updated["size"], updated["metadata"]) == (
        "in-use",
        5,
        {"a": 1},
    )
    assert updated["created_at"] == added["created_at"]
    assert _utc(updated["updated_at"]) > _utc(added["updated_at"])
    assert call(api.get_volume_dict, fields["id"]) == updated


def test_unknown_field_is_refused(call: Any) -> None:
    with pytest.raises(TypeError, match="colour"):
        call(api.add_volume, **volume_fields(colour="blue"))
    fields = volume_fields()
    call(api.add_volume, **fields)
    with pytest.raises(TypeError, match="colour"):
        call(api.update_volume, fields["id"], colour="blue")


def test_delete_forgets_the_volume_and_its_attachments(call: Any) -> None:
    fields = volume_fields()
    call(api.add_volume, **fields)
    call(api.add_attachment, fields["id"], {"host": "compute1"})
    assert call(api.delete_volume, fields["id"]) is True
    assert call(api.get_volume, fields["id"]) is None
    assert call(api.list_attachments, fields["id"]) == []
    assert call(api.delete_volume, fields["id"]) is False


def test_placement_keeps_host_and_pool_in_step(call: Any) -> None:
    by_pool = call(api.add_volume, **volume_fields(host="h@b", pool="p2"))
    assert by_pool["host"] == "h@b#p2"
    no_pool = volume_fields(host="h@b")
    assert call(api.add_volume, **no_pool)["host"] == "h@b"
    assert call(lambda s: api.get_volume(s, no_pool["id"]).pool) is None
    moved = call(api.update_volume, by_pool["id"], pool="p3")
    assert moved["host"] == "h@b#p3"
    with pytest.raises(exception.InvalidInput):
        call(api.add_volume, **volume_fields(host="h@b#p1", pool="p2"))


def test_service_defaults_to_the_host_without_pool(call: Any) -> None:
    fields = volume_fields(host="h9@b#p")
    del fields["service"]
    call(api.add_volume, **fields)
    assert call(lambda s: api.get_volume(s, fields["id"]).service) == "h9@b"


def test_datetimes_come_back_in_utc(call: Any) -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    created = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=plus_two)
    fields = volume_fields(created_at=created)
    call(api.add_volume, **fields)
    row_created = call(lambda s: api.get_volume(s, fields["id"]).created_at)
    assert row_created == created
    assert row_created.tzinfo == dt.UTC
    assert call(api.get_volume_dict, fields["id"])["created_at"] == (
        "2024-05-01T10:00:00.123456+00:00"
    )
    with pytest.raises(sa.exc.StatementError, match="naive"):
        call(api.add_volume, **volume_fields(created_at=dt.datetime(2024, 5, 1)))


def test_to_volume_builds_the_driver_object(call: Any) -> None:
    fields = volume_fields(
        volume_type={"name": "gold", "extra_specs": {"thin": "true"}},
        provider_location="loc",
        provider_auth="CHAP a b",
        source_volid=new_id(),
    )
    call(api.add_volume, **fields)
    attachment = call(
        api.add_attachment, fields["id"], {"host": "c1", "ip": "10.0.0.1"}
    )
    volume = call(api.volume_object, fields["id"])
    assert isinstance(volume, objects.Volume)
    assert volume.name == f"volume-{fields['id']}"
    assert (volume.pool, volume.service_host) == ("pool1", "host1@lvm")
    assert volume.volume_type == objects.VolumeType("gold", {"thin": "true"})
    assert (volume.provider_location, volume.provider_auth) == ("loc", "CHAP a b")
    assert volume.source_volid == fields["source_volid"]
    assert [a.connector for a in volume.attachments] == [
        {"host": "c1", "ip": "10.0.0.1"}
    ]
    # Rows, records and objects all do as attachments.
    from_dicts = call(
        lambda s: api.get_volume(s, fields["id"]).to_volume(
            api.list_attachments(s, fields["id"])
        )
    )
    assert from_dicts.attachments == volume.attachments
    assert from_dicts.attachments[0].id == attachment["id"]


def _add_many(call: Any, service: str, count: int) -> list[str]:
    """Volumes with creation times that tie in pairs, so ids break the ties."""
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    ids = []
    for i in range(count):
        fields = volume_fields(service=service, created_at=base + dt.timedelta(i // 2))
        call(api.add_volume, **fields)
        ids.append(fields["id"])
    return ids


def _expected_order(call: Any, ids: list[str]) -> list[str]:
    def key(volume_id: str) -> tuple[Any, str]:
        return call(lambda s: api.get_volume(s, volume_id).created_at), volume_id

    return sorted(ids, key=key)


def test_list_volumes_pages_by_marker(call: Any) -> None:
    ids = _add_many(call, "host1@lvm", 7)
    _add_many(call, "other@lvm", 2)
    everything = [v["id"] for v in call(api.list_volumes, "host1@lvm")]
    assert everything == _expected_order(call, ids)
    pages: list[list[str]] = []
    marker = None
    while True:
        page = call(api.list_volumes, "host1@lvm", marker=marker, limit=3)
        if not page:
            break
        pages.append([v["id"] for v in page])
        marker = page[-1]["id"]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for page in pages for i in page] == everything
    assert call(api.list_volumes, "host1@lvm", limit=0) == []


@pytest.mark.parametrize("marker", ["unknown", "other-service"])
def test_list_volumes_refuses_a_foreign_marker(call: Any, marker: str) -> None:
    foreign = _add_many(call, "other@lvm", 1)[0]
    with pytest.raises(exception.InvalidInput, match="marker"):
        call(
            api.list_volumes,
            "host1@lvm",
            marker=new_id() if marker == "unknown" else foreign,
        )


def test_list_volumes_refuses_a_negative_limit(call: Any) -> None:
    with pytest.raises(exception.InvalidInput, match="limit"):
        call(api.list_volumes, "host1@lvm", limit=-1)


def test_pool_allocations_count_what_occupies_a_pool(call: Any) -> None:
    service = "host1@lvm"
    for pool, size, status in (
        ("a", 1, "available"),
        ("a", 2, "in-use"),
        ("a", 4, "creating"),
        ("a", 8, "error_deleting"),
        ("a", 16, "error"),
        ("b", 32, "deleting"),
    ):
        call(
            api.add_volume,
            **volume_fields(host=f"{service}#{pool}", size=size, status=status),
        )
    call(
        api.add_volume,
        **volume_fields(service="other@lvm", host="other@lvm#a", size=64),
    )
    call(api.add_volume, **volume_fields(host=service, size=128))
    assert call(api.pool_allocations, service) == {
        "a": {"allocated_capacity_gb": 15, "total_volumes": 4},
        "b": {"allocated_capacity_gb": 32, "total_volumes": 1},
        None: {"allocated_capacity_gb": 128, "total_volumes": 1},
    }
    assert call(api.pool_allocations, "nobody@lvm") == {}
