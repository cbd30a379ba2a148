"""Checks on the group objects of contract 1.1, as ``validate`` does for
volumes and snapshots: each returns the canonical form or raises
``InvalidInput`` naming the argument."""

from __future__ import annotations

from typing import Any

from volworker import exception
from volworker.rpc import validate
from volworker.rpc.validate import BackendIdentity

__all__ = ["MAX_MEMBERS", "group", "group_snapshot", "new_members", "volume_ids"]

#: The most volumes one group request may name.
MAX_MEMBERS = 256


def _fail(reason: str) -> exception.InvalidInput:
    return exception.InvalidInput(reason=reason)


def _group_type(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    gtype = validate._object(value, "group.group_type")
    return {
        "name": validate._text(gtype.get("name"), "group.group_type.name"),
        "group_specs": validate.specs(
            gtype.get("group_specs"), "group.group_type.group_specs"
        ),
    }


def group(value: Any, ident: BackendIdentity) -> dict[str, Any]:
    """A contract group object: ``id``, ``host``, ``name``, ``group_type``."""
    raw = validate._object(value, "group")
    host = ident.check_host(raw.get("host"), "group.host")
    return {
        "id": validate.uuid_str(raw.get("id"), "group.id"),
        # A group lives on a backend, not in one of its pools.
        "host": host.partition("#")[0],
        "name": validate._optional_text(raw.get("name"), "group.name"),
        "group_type": _group_type(raw.get("group_type")),
    }


def group_snapshot(value: Any) -> dict[str, Any]:
    """A contract group snapshot object: ``id``, ``group_id``, ``name``."""
    raw = validate._object(value, "group_snapshot")
    return {
        "id": validate.uuid_str(raw.get("id"), "group_snapshot.id"),
        "group_id": validate.uuid_str(raw.get("group_id"), "group_snapshot.group_id"),
        "name": validate._optional_text(raw.get("name"), "group_snapshot.name"),
    }


def volume_ids(value: Any, field: str) -> list[str]:
    """A list of distinct volume UUIDs (None: none)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(f"{field} must be a list of volume ids")
    if len(value) > MAX_MEMBERS:
        raise _fail(f"{field} names more than {MAX_MEMBERS} volumes")
    ids = [validate.uuid_str(item, f"{field} item") for item in value]
    if len(set(ids)) != len(ids):
        raise _fail(f"{field} names a volume twice")
    return ids


def new_members(
    value: Any,
    ident: BackendIdentity,
    max_gb: int,
    group_id: str,
    source: str,
) -> list[dict[str, Any]]:
    """The volumes of a group made from a source: each a contract volume
    naming its ``source`` (``snapshot_id`` or ``source_volid``)."""
    if not isinstance(value, list) or not value:
        raise _fail("volumes must be a non-empty list of volumes")
    if len(value) > MAX_MEMBERS:
        raise _fail(f"volumes names more than {MAX_MEMBERS} volumes")
    members = []
    for raw in value:
        checked = validate.volume(raw, ident, max_gb)
        if not checked[source]:
            raise _fail(f"volume {checked['id']} names no {source}")
        if checked.get("group_id", group_id) != group_id:
            raise _fail(f"volume {checked['id']} names another group")
        checked["group_id"] = group_id
        members.append(checked)
    if len({m["id"] for m in members}) != len(members):
        raise _fail("volumes names a volume twice")
    return members
