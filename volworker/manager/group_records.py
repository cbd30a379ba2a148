"""Groups' records as store work items: the records a group create starts
with, the driver objects of a group or group snapshot with their members,
and the volumes a group operation holds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from volworker import exception
from volworker.objects import Group, GroupSnapshot, Snapshot, Volume
from volworker.state import groups, records

__all__ = [
    "GROUP_ACTIONS",
    "group_row",
    "group_snapshot_row",
    "load_group",
    "load_group_snapshot",
    "new_group_records",
    "volumes_touched",
]

GROUP_ACTIONS = frozenset(
    {
        "create_group",
        "delete_group",
        "update_group",
        "create_group_snapshot",
        "delete_group_snapshot",
        "create_group_from_src",
    }
)


def group_row(session: Session, service: str, group_id: str) -> Any:
    return records.load_owned(session, service, "group", group_id)


def group_snapshot_row(session: Session, service: str, group_snapshot_id: str) -> Any:
    return records.load_owned(session, service, "group_snapshot", group_snapshot_id)


def _volume(session: Session, row: Any) -> Volume:
    volume: Volume = row.to_volume(records.attachments(session, row.id))
    return volume


def load_group(
    session: Session, service: str, group_id: str
) -> tuple[dict[str, Any], Group]:
    """The group's record (with ``volume_ids``) and driver object (with its
    member volumes); GroupNotFound if not ours."""
    row = group_row(session, service, group_id)
    volumes = [_volume(session, v) for v in groups.members(session, group_id)]
    return groups.with_volume_ids(session, row), row.to_group(volumes)


def load_group_snapshot(
    session: Session, service: str, group_snapshot_id: str
) -> tuple[dict[str, Any], GroupSnapshot, list[Snapshot]]:
    """The group snapshot's record (with ``snapshot_ids``), driver object and
    member snapshots; GroupSnapshotNotFound if not ours."""
    row = group_snapshot_row(session, service, group_snapshot_id)
    _, group = load_group(session, service, row.group_id)
    snapshots = []
    for snap in groups.member_snapshots(session, group_snapshot_id):
        parent = records.load(session, "volume", snap.volume_id)
        if parent is not None:
            snapshots.append(snap.to_snapshot(_volume(session, parent)))
    record = groups.with_snapshot_ids(session, row)
    return record, row.to_group_snapshot(group), snapshots


def new_group_records(
    session: Session, service: str, action: str, args: dict[str, Any]
) -> Any:
    """Insert the records a group create starts with (the group, or group
    snapshot, ``creating``; for a group from a source also its new
    volumes); return the group's (or group snapshot's) row, or None when
    its id is taken. A new volume whose id is taken is bad input."""
    if action == "create_group_snapshot":
        fields = args["group_snapshot"]
        return records.insert(
            session,
            "group_snapshot",
            id=fields["id"],
            group_id=fields["group_id"],
            service=service,
            status="creating",
            display_name=fields.get("name"),
        )
    fields = args["group"]
    row = records.insert(
        session,
        "group",
        id=fields["id"],
        service=service,
        host=fields["host"],
        status="creating",
        display_name=fields.get("name"),
        group_type=fields.get("group_type"),
    )
    if row is None:
        return None
    for volume in args.get("volumes", ()):
        made = records.insert(
            session,
            "volume",
            id=volume["id"],
            service=service,
            host=volume["host"],
            pool=volume["host"].partition("#")[2] or None,
            size=volume["size"],
            status="creating",
            display_name=volume.get("name"),
            volume_type=volume.get("volume_type"),
            meta=volume.get("metadata") or {},
            snapshot_id=volume.get("snapshot_id"),
            source_volid=volume.get("source_volid"),
            group_id=fields["id"],
        )
        if made is None:
            raise exception.InvalidInput(reason=f"volume {volume['id']} exists already")
    return row


def volumes_touched(
    session: Session, service: str, action: str, args: dict[str, Any]
) -> set[str]:
    """What a group operation holds: the group's own key (its id), and the
    turn of every volume it reads or changes, members that journaled
    ``update_group`` operations will add included."""
    if "group_snapshot" in args:
        group_id = args["group_snapshot"]["group_id"]
        if action == "delete_group_snapshot":
            snaps = groups.member_snapshots(session, args["group_snapshot"]["id"])
            return {group_id, *(s.volume_id for s in snaps)}
        return {group_id, *_members(session, service, group_id)}
    group_id = args["group"]["id"]
    if action == "create_group":
        return {group_id}
    if action == "update_group":
        return {group_id, *args["add_volumes"], *args["remove_volumes"]}
    if action == "create_group_from_src":
        keys = {group_id, *(v["id"] for v in args["volumes"])}
        if args.get("source_group_id"):
            source = args["source_group_id"]
            keys |= {source, *_members(session, service, source)}
        elif args.get("group_snapshot_id"):
            for snap in groups.member_snapshots(session, args["group_snapshot_id"]):
                keys.add(snap.volume_id)
        return keys
    return {group_id, *_members(session, service, group_id)}


def _members(session: Session, service: str, group_id: str) -> set[str]:
    current = {v.id for v in groups.members(session, group_id)}
    return current | groups.pending_adds(session, service, group_id)
