"""What arrives over the wire is checked and named when wrong."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from volworker import exception
from volworker.rpc import validate, validate_groups
from volworker.rpc.validate import BackendIdentity

IDENT = BackendIdentity("h1", "b1", None, ("gold", "silver"))
CLUSTERED = BackendIdentity("h1", "b1", "c1", ("gold",))


def _volume(**fields: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "size": 1, "host": "h1@b1", **fields}


def test_volume_is_canonical_and_gets_the_default_pool() -> None:
    raw = _volume(id=str(uuid.uuid4()).upper(), name="db", extra="ignored")
    checked = validate.volume(raw, IDENT, 100)
    assert checked["id"] == raw["id"].lower()
    assert checked["host"] == "h1@b1#gold"
    assert checked["name"] == "db" and "extra" not in checked


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"id": "../../etc/passwd"}, "volume.id"),
        ({"id": 7}, "volume.id"),
        ({"size": 0}, "volume.size"),
        ({"size": -3}, "volume.size"),
        ({"size": 10**12}, "volume.size"),
        ({"size": True}, "volume.size"),
        ({"size": "1"}, "volume.size"),
        ({"host": "h2@b1"}, "another host"),
        ({"host": "h1@b2"}, "backend"),
        ({"host": "h1@b1#bronze"}, "bronze"),
        ({"name": "x" * 300}, "volume.name"),
        ({"name": "bad\x00name"}, "control"),
        ({"name": "lone \ud800 surrogate"}, "not valid Unicode"),
        ({"metadata": {"k": {"nested": 1}}}, "metadata"),
        ({"volume_type": {"name": 3}}, "volume_type.name"),
        (
            {
                "volume_type": {
                    "name": "t",
                    "extra_specs": {str(i): "v" for i in range(65)},
                }
            },
            "extra_specs has more than 64 keys",
        ),
        (
            {"volume_type": {"name": "t", "extra_specs": {"k": 1}}},
            r"extra_specs\['k'\]",
        ),
        (
            {"volume_type": {"name": "t", "extra_specs": []}},
            "extra_specs must be an object",
        ),
        ({"snapshot_id": "nope"}, "snapshot_id"),
    ],
)
def test_bad_volume_fields_are_named(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(exception.InvalidInput, match=named):
        validate.volume(_volume(**fields), IDENT, 100)


def test_at_most_one_source() -> None:
    two = _volume(snapshot_id=str(uuid.uuid4()), source_volid=str(uuid.uuid4()))
    with pytest.raises(exception.InvalidInput, match="more than one source"):
        validate.volume(two, IDENT, 100)


def test_a_cluster_member_accepts_other_members_and_the_cluster() -> None:
    for host in ("h2@b1", "c1@b1#gold"):
        assert validate.volume(_volume(host=host), CLUSTERED, 100)["host"].endswith(
            "#gold"
        )


@pytest.mark.parametrize(
    "value", [None, {}, {"host": ""}, {"host": 3}, {"host": "x", "multipath": "yes"}]
)
def test_bad_connectors(value: Any) -> None:
    with pytest.raises(exception.InvalidInput, match="connector"):
        validate.connector(value)


def test_connector_may_be_null_where_allowed() -> None:
    assert validate.connector(None, optional=True) is None


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def test_an_os_brick_connector_passes() -> None:
    found = {
        "host": "compute-1",
        "ip": "10.0.0.7",
        "initiator": "iqn.1993-08.org.debian:01:abc",
        "wwpns": ["50014380186af83c", "50014380186af83e"],
        "multipath": False,
        "platform": "x86_64",
        "os_type": "linux2",
        "extra": {"nested": [1, 2]},
    }
    assert validate.connector(found) == found


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"wwpns": _nested(validate.MAX_CONNECTOR_DEPTH)}, "nested deeper"),
        ({"wwpns": list(range(validate.MAX_CONNECTOR_ITEMS + 1))}, "more than"),
        ({f"k{i}": 1 for i in range(validate.MAX_CONNECTOR_ITEMS)}, "more than"),
        ({"blob": "x" * validate.MAX_CONNECTOR_BYTES}, "larger than"),
        ({"wwpns": [{1, 2}]}, "must be JSON"),
    ],
)
def test_connectors_have_a_bounded_size_and_depth(extra: Any, message: str) -> None:
    with pytest.raises(exception.InvalidInput, match=message):
        validate.connector({"host": "compute-1", **extra})


def test_a_connector_at_the_depth_limit_passes() -> None:
    deep = {"host": "h", "paths": _nested(validate.MAX_CONNECTOR_DEPTH - 1)}
    assert validate.connector(deep) == deep


@pytest.mark.parametrize(
    ("value", "named"),
    [({}, "source-name"), ([], "ref"), ({"source-name": 5}, "source-name")],
)
def test_bad_manage_refs(value: Any, named: str) -> None:
    with pytest.raises(exception.InvalidInput, match=named):
        validate.manage_ref(value)


def test_image_meta_formats() -> None:
    good = {"id": str(uuid.uuid4()), "disk_format": "qcow2"}
    assert validate.image_meta(good)["disk_format"] == "qcow2"
    with pytest.raises(exception.InvalidInput, match="disk_format"):
        validate.image_meta({**good, "disk_format": "vmdk"})


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("5f0e6c4b8b9b4f6fa2c1", True),
        ("", False),
        ({}, False),
        (["x"], False),
        ("\ud800", False),
        ("x" * 65, False),
        ("tab\there", False),
    ],
)
def test_only_a_short_printable_message_id_is_kept(value: Any, kept: bool) -> None:
    from volworker.rpc.dispatcher import _message_id

    assert (_message_id(value) == value) is kept
    assert kept or _message_id(value) is None


def test_group_specs_are_bounded_like_extra_specs() -> None:
    group = {
        "id": str(uuid.uuid4()),
        "host": "h1@b1",
        "group_type": {"name": "t", "group_specs": {str(i): "v" for i in range(65)}},
    }
    with pytest.raises(exception.InvalidInput, match="group_specs has more than 64"):
        validate_groups.group(group, IDENT)
    group["group_type"]["group_specs"] = {
        "consistent_group_snapshot_enabled": "<is> True"
    }
    checked = validate_groups.group(group, IDENT)
    assert checked["group_type"]["group_specs"] == {
        "consistent_group_snapshot_enabled": "<is> True"
    }


def _bind_error(method: str, args: dict[str, Any]) -> str | None:
    import inspect

    from volworker.rpc.endpoint import Endpoint

    try:
        inspect.signature(getattr(Endpoint, method)).bind(None, **args)
    except TypeError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(
    "args",
    [
        {"volume": {}},
        {},
        {"volume": {}, "surplus": 1},
        {"surplus": 1},
        {"volume": {}, "snapshot": {}, "new_size": 2},
        {"snapshot": {}},
    ],
)
def test_arguments_are_refused_as_inspect_would_refuse_them(
    args: dict[str, Any],
) -> None:
    """The dispatcher's check of a request's argument names says what
    ``inspect.Signature.bind`` says, for every method of the contract."""
    from volworker.rpc.dispatcher import METHODS, _check_args

    for method in sorted(METHODS):
        try:
            _check_args(method, args)
        except TypeError as exc:
            assert str(exc) == _bind_error(method, args), method
        else:
            assert _bind_error(method, args) is None, method
