"""Volumes, snapshots and attachments: the record functions the worker runs."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa

from tests.unit.state.conftest import new_id, snapshot_fields, volume_fields
from volworker import exception, objects
from volworker.state import records

VOLUME_KEYS = {"id", "status", "size", "host", "name", "metadata"}
SNAPSHOT_KEYS = {"id", "status", "size", "volume_id", "name", "metadata"}
TIMES = {"created_at", "updated_at"}


def _utc(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.utcoffset() == dt.timedelta(0)
    return parsed


def _record(call: Any, kind: str, resource_id: str) -> dict[str, Any]:
    """The stored record (the test fails when there is none)."""
    row = call(lambda s: records.load(s, kind, resource_id))
    assert row is not None, f"no {kind} {resource_id}"
    return dict(row.to_dict())


def _gone(call: Any, kind: str, resource_id: str) -> bool:
    return call(lambda s: records.load(s, kind, resource_id)) is None


def _add(call: Any, kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    row = call(lambda s: records.insert(s, kind, **fields))
    assert row is not None
    return dict(row.to_dict())


def test_insert_and_load_give_the_contract_record(call: Any) -> None:
    fields = volume_fields(display_name="vol", meta={"k": "v"}, size=3)
    added = _add(call, "volume", fields)
    assert set(added) == VOLUME_KEYS | TIMES
    assert _record(call, "volume", fields["id"]) == added
    assert (added["host"], added["name"], added["metadata"]) == (
        "host1@lvm#pool1",
        "vol",
        {"k": "v"},
    )
    assert _utc(added["created_at"]) == _utc(added["updated_at"])
    assert json.loads(json.dumps(added)) == added


def test_a_taken_id_inserts_nothing(call: Any) -> None:
    fields = volume_fields(size=2)
    _add(call, "volume", fields)
    again = call(lambda s: records.insert(s, "volume", **{**fields, "size": 9}))
    assert again is None
    assert _record(call, "volume", fields["id"])["size"] == 2


def test_a_volume_without_a_pool_is_recorded_without_one(call: Any) -> None:
    fields = volume_fields(host="h@b", pool=None)
    assert _add(call, "volume", fields)["host"] == "h@b"
    assert call(lambda s: records.load(s, "volume", fields["id"]).pool) is None


def test_error_shows_only_in_error_statuses(call: Any) -> None:
    fields = volume_fields(status="error", error="backend said no")
    assert _add(call, "volume", fields)["error"] == "backend said no"
    call(lambda s: records.update(s, "volume", fields["id"], status="available"))
    assert "error" not in _record(call, "volume", fields["id"])
    call(lambda s: records.update(s, "volume", fields["id"], status="error_extending"))
    assert _record(call, "volume", fields["id"])["error"] == "backend said no"


def test_update_sets_fields_and_updated_at(call: Any) -> None:
    fields = volume_fields()
    added = _add(call, "volume", fields)
    call(
        lambda s: records.update(
            s, "volume", fields["id"], status="in-use", size=5, meta={"a": 1}
        )
    )
    updated = _record(call, "volume", fields["id"])
    assert (updated["status"], updated["size"], updated["metadata"]) == (
        "in-use",
        5,
        {"a": 1},
    )
    assert updated["created_at"] == added["created_at"]
    assert _utc(updated["updated_at"]) > _utc(added["updated_at"])


def test_apply_mirrors_update_on_a_loaded_row(call: Any) -> None:
    fields = volume_fields()
    _add(call, "volume", fields)

    def work(session: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        row = records.load(session, "volume", fields["id"])
        records.update(session, "volume", fields["id"], status="extending", size=2)
        records.apply(row, status="extending", size=2)
        return row.to_dict(), records.load(session, "volume", fields["id"]).to_dict()

    applied, stored = call(work)
    assert {k: applied[k] for k in ("status", "size")} == {
        k: stored[k] for k in ("status", "size")
    }


def test_unknown_field_is_refused(call: Any) -> None:
    with pytest.raises(TypeError, match="colour"):
        call(lambda s: records.insert(s, "volume", **volume_fields(colour="blue")))
    fields = volume_fields()
    _add(call, "volume", fields)
    with pytest.raises(TypeError, match="colour"):
        call(lambda s: records.update(s, "volume", fields["id"], colour="blue"))


def test_delete_forgets_the_volume_and_its_attachments(call: Any) -> None:
    fields = volume_fields()
    _add(call, "volume", fields)
    call(lambda s: records.attach(s, fields["id"], {"host": "c1"}, {"a": 1}))
    call(lambda s: records.delete(s, "volume", fields["id"]))
    assert _gone(call, "volume", fields["id"])
    assert call(lambda s: records.attachments(s, fields["id"])) == []


def test_datetimes_come_back_in_utc(call: Any) -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    created = dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=plus_two)
    fields = volume_fields(created_at=created)
    _add(call, "volume", fields)
    row_created = call(lambda s: records.load(s, "volume", fields["id"]).created_at)
    assert row_created == created
    assert row_created.tzinfo == dt.UTC
    assert _record(call, "volume", fields["id"])["created_at"] == (
        "2024-05-01T10:00:00.123456+00:00"
    )
    naive = volume_fields(created_at=dt.datetime(2024, 5, 1))
    with pytest.raises(sa.exc.StatementError, match="naive"):
        call(lambda s: records.insert(s, "volume", **naive))


def test_to_volume_builds_the_driver_object(call: Any) -> None:
    fields = volume_fields(
        volume_type={"name": "gold", "extra_specs": {"thin": "true"}},
        provider_location="loc",
        provider_auth="CHAP a b",
        source_volid=new_id(),
    )
    _add(call, "volume", fields)
    connector = {"host": "c1", "ip": "10.0.0.1"}
    call(lambda s: records.attach(s, fields["id"], connector, {"x": 1}))

    def work(session: Any) -> objects.Volume:
        row = records.load(session, "volume", fields["id"])
        return row.to_volume(records.attachments(session, fields["id"]))

    volume = call(work)
    assert volume.name == f"volume-{fields['id']}"
    assert (volume.pool, volume.service_host) == ("pool1", "host1@lvm")
    assert volume.volume_type == objects.VolumeType("gold", {"thin": "true"})
    assert (volume.provider_location, volume.provider_auth) == ("loc", "CHAP a b")
    assert volume.source_volid == fields["source_volid"]
    assert [(a.connector, a.connection_info) for a in volume.attachments] == [
        (connector, {"x": 1})
    ]


def test_snapshots_record_and_driver_object(call: Any) -> None:
    volume = volume_fields(size=4)
    _add(call, "volume", volume)
    fields = snapshot_fields(volume, display_name="snap", meta={"k": 1}, error="x")
    added = _add(call, "snapshot", fields)
    assert set(added) == SNAPSHOT_KEYS | TIMES
    assert (added["size"], added["name"], added["metadata"]) == (4, "snap", {"k": 1})
    call(lambda s: records.update(s, "volume", volume["id"], size=10))

    def work(session: Any) -> objects.Snapshot:
        parent = records.load(session, "volume", volume["id"]).to_volume()
        return records.load(session, "snapshot", fields["id"]).to_snapshot(parent)

    snapshot = call(work)
    assert snapshot.name == f"snapshot-{fields['id']}"
    assert (snapshot.volume.size, snapshot.volume_size) == (10, 4)
    call(lambda s: records.update(s, "snapshot", fields["id"], status="error"))
    assert _record(call, "snapshot", fields["id"])["error"] == "x"


def test_snapshot_counts_and_their_volume(call: Any) -> None:
    volume, other = volume_fields(), volume_fields()
    for fields in (volume, other):
        _add(call, "volume", fields)
    ids = [_add(call, "snapshot", snapshot_fields(volume))["id"] for _ in range(3)]
    _add(call, "snapshot", snapshot_fields(other))
    assert call(lambda s: records.count_snapshots(s, volume["id"])) == 3
    assert call(lambda s: records.snapshot_volume_id(s, ids[0])) == volume["id"]
    assert call(lambda s: records.snapshot_volume_id(s, new_id())) is None
    call(lambda s: records.delete(s, "snapshot", ids[0]))
    assert call(lambda s: records.count_snapshots(s, volume["id"])) == 2
    assert call(lambda s: records.count_snapshots(s, new_id())) == 0


def test_attach_replaces_the_same_host_and_detach_counts_the_rest(
    call: Any,
) -> None:
    fields = volume_fields()
    vid = fields["id"]
    _add(call, "volume", fields)
    for host, info in (("c1", {"n": 1}), ("c2", {"n": 2}), ("c1", {"n": 3})):
        call(lambda s, h=host, i=info: records.attach(s, vid, {"host": h}, i))
    found = call(lambda s: records.attachments(s, vid))
    assert [(a["connector"]["host"], a["connection_info"]) for a in found] == [
        ("c2", {"n": 2}),
        ("c1", {"n": 3}),
    ]
    assert call(lambda s: records.detach(s, vid, "c2")) == 1
    assert call(lambda s: records.detach(s, vid, "c2")) == 1
    assert call(lambda s: records.detach(s, vid, None)) == 0
    with pytest.raises(exception.InvalidInput, match="host"):
        call(lambda s: records.attach(s, vid, {"ip": "10.0.0.1"}, {}))


def _add_many(call: Any, service: str, count: int) -> list[str]:
    """Volumes with creation times that tie in pairs, so ids break the ties."""
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    ids = []
    for i in range(count):
        fields = volume_fields(service=service, created_at=base + dt.timedelta(i // 2))
        _add(call, "volume", fields)
        ids.append(fields["id"])
    return ids


def test_list_volumes_pages_by_marker(call: Any) -> None:
    ids = _add_many(call, "host1@lvm", 7)
    _add_many(call, "other@lvm", 2)
    everything = [v["id"] for v in call(records.list_volumes, "host1@lvm")]
    times = {
        i: call(lambda s, i=i: records.load(s, "volume", i).created_at) for i in ids
    }
    assert everything == sorted(ids, key=lambda i: (times[i], i))
    pages: list[list[str]] = []
    marker = None
    while page := call(records.list_volumes, "host1@lvm", marker=marker, limit=3):
        pages.append([v["id"] for v in page])
        marker = page[-1]["id"]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for page in pages for i in page] == everything
    assert call(records.list_volumes, "host1@lvm", limit=0) == []


@pytest.mark.parametrize("marker", ["unknown", "other-service"])
def test_list_volumes_refuses_a_foreign_marker(call: Any, marker: str) -> None:
    foreign = _add_many(call, "other@lvm", 1)[0]
    with pytest.raises(exception.InvalidInput, match="marker"):
        call(
            records.list_volumes,
            "host1@lvm",
            marker=new_id() if marker == "unknown" else foreign,
        )


def test_list_volumes_refuses_a_negative_limit(call: Any) -> None:
    with pytest.raises(exception.InvalidInput, match="limit"):
        call(records.list_volumes, "host1@lvm", limit=-1)


def test_volume_ids_by_status(call: Any) -> None:
    wanted = [volume_fields(status=s) for s in ("available", "in-use")]
    others = [volume_fields(status="error"), volume_fields(service="x@y")]
    for fields in wanted + others:
        _add(call, "volume", fields)
    found = call(records.volume_ids, "host1@lvm", ("available", "in-use"))
    assert sorted(found) == sorted(f["id"] for f in wanted)


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
        fields = volume_fields(
            host=f"{service}#{pool}", pool=pool, size=size, status=status
        )
        _add(call, "volume", fields)
    _add(call, "volume", volume_fields(service="other@lvm", pool="a", size=64))
    _add(call, "volume", volume_fields(host=service, pool=None, size=128))
    assert call(records.pool_allocations, service) == {
        "a": {"allocated_capacity_gb": 15, "total_volumes": 4},
        "b": {"allocated_capacity_gb": 32, "total_volumes": 1},
        None: {"allocated_capacity_gb": 128, "total_volumes": 1},
    }
    assert call(records.pool_allocations, "nobody@lvm") == {}


def test_driver_objects_are_the_services_volumes_and_snapshots(call: Any) -> None:
    mine, attached, foreign = (
        volume_fields(),
        volume_fields(),
        volume_fields(service="x@y"),
    )
    for fields in (mine, attached, foreign):
        _add(call, "volume", fields)
    snap = snapshot_fields(mine)
    _add(call, "snapshot", snap)
    _add(call, "snapshot", snapshot_fields(foreign))
    call(lambda s: records.attach(s, attached["id"], {"host": "c"}, {"i": 1}))
    volumes, snapshots = call(records.driver_objects, "host1@lvm")
    by_id = {v.id: v for v in volumes}
    assert set(by_id) == {mine["id"], attached["id"]}
    assert [a.connector for a in by_id[attached["id"]].attachments] == [{"host": "c"}]
    assert [(s.id, s.volume.id) for s in snapshots] == [(snap["id"], mine["id"])]
