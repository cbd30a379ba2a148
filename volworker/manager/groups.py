"""Group operations: create, update (members in and out), delete, and
create from a source (a group snapshot or another group).

Each holds its group's key and the turn of every member volume it touches,
so no member operation runs inside it. The driver's own group methods are
called when it declares groups, the generic ones otherwise
(:mod:`volworker.driver.groups`). A group create that fails leaves the group
in ``error`` and none of the volumes it was making.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.orm import Session

from volworker import exception
from volworker.driver import Feature, ModelUpdate, ModelUpdates
from volworker.driver.groups import GroupMethods, group_methods
from volworker.manager.operation import Operation
from volworker.objects import Group, GroupSnapshot, Snapshot, Volume
from volworker.state import groups, records

__all__ = [
    "check_model_update",
    "create_group",
    "create_group_from_src",
    "delete_group",
    "kept",
    "update_group",
]

SETTLED = ("available",)
DELETABLE = frozenset({"available", "error", "error_deleting", "deleting", "creating"})
MEMBER_STATUSES = ("available", "in-use")
VOLUME_DELETABLE = frozenset({"available", "error", "error_deleting", "deleting"})
_FAILED = ("error", "error_deleting")


def methods(op: Operation) -> GroupMethods:
    return group_methods(op.driver)


def check_model_update(what: str, update: ModelUpdate, members: ModelUpdates) -> None:
    """Raise when the driver's updates say the operation failed."""
    failed = [m.get("id") for m in members or () if m.get("status") in _FAILED]
    if (update or {}).get("status") in _FAILED or failed:
        detail = f"; members failed: {', '.join(map(str, failed))}" if failed else ""
        raise exception.VolumeBackendAPIException(data=f"{what} failed{detail}")


def kept(op: Operation, members: ModelUpdates) -> dict[str, dict[str, Any]]:
    """Per member id, what the worker keeps of the driver's update."""
    return {
        str(m["id"]): op.model_update({k: v for k, v in m.items() if k != "id"})
        for m in members or ()
        if isinstance(m, dict) and "id" in m
    }


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise exception.InvalidInput(reason=reason)


def _consistency_possible(op: Operation, group: Group) -> None:
    if group.consistent and not op.driver.supports(Feature.CONSISTENT_GROUP_SNAPSHOT):
        raise exception.NotSupported(
            operation=f"consistent group snapshots on {op.runtime.service} (group "
            f"type {group.group_type.name if group.group_type else '-'} asks for "
            "consistent_group_snapshot_enabled)"
        )


async def create_group(op: Operation) -> None:
    _, group = await op.load_group(op.resource_id)
    _consistency_possible(op, group)
    group = await op.begin("creating")
    update = await op.call(methods(op).create_group, op.context, group)
    check_model_update(f"create_group {group.id}", update, None)
    await op.finish(status="available")


async def update_group(op: Operation) -> None:
    record, group = await op.load_group(op.resource_id)
    _require(record["status"] in SETTLED, f"group {group.id} is {record['status']}")
    current = {v.id for v in group.volumes}
    add, remove = op.args["add_volumes"], op.args["remove_volumes"]
    _require(not set(add) & set(remove), "a volume cannot be added and removed")
    _require(set(remove) <= current, f"not members of group {group.id}: {remove}")
    added = [await _joining(op, volume_id, group.id) for volume_id in add]
    removed = [v for v in group.volumes if v.id in remove]
    group = await op.begin("updating")
    update, _, _ = await op.call(
        methods(op).update_group, op.context, group, added, removed
    )
    check_model_update(f"update_group {group.id}", update, None)

    def members(session: Session) -> None:
        groups.set_group(session, [v.id for v in added], group.id)
        groups.set_group(session, [v.id for v in removed], None)

    await op.finish(status="available", also=members)


async def _joining(op: Operation, volume_id: str, group_id: str) -> Volume:
    record, volume = await op.load_volume(volume_id)
    _require(
        record["status"] in MEMBER_STATUSES,
        f"volume {volume_id} is {record['status']}",
    )
    _require(
        volume.group_id in (None, group_id),
        f"volume {volume_id} is in group {volume.group_id}",
    )
    return volume


async def delete_group(op: Operation) -> None:
    record, group = await op.load_group(op.resource_id)
    _require(record["status"] in DELETABLE, f"group {group.id} is {record['status']}")
    if group.volumes and not op.args["delete_volumes"]:
        raise exception.InvalidInput(
            reason=f"group {group.id} has {len(group.volumes)} volume(s); remove "
            "them or delete them with it (delete_volumes)"
        )
    for volume in group.volumes:
        await _deletable(op, volume)
    group = await op.begin("deleting")
    update, members = await op.call(
        methods(op).delete_group, op.context, group, group.volumes
    )
    check_model_update(f"delete_group {group.id}", update, members)

    def forget(session: Session) -> None:
        for volume in group.volumes:
            records.delete(session, "volume", volume.id)

    await op.finish(delete=True, also=forget)


async def _deletable(op: Operation, volume: Volume) -> None:
    if volume.attachments or volume.status not in VOLUME_DELETABLE:
        raise exception.InvalidVolume(
            reason=f"member {volume.id} is {volume.status}"
            + (" and attached" if volume.attachments else "")
        )
    count = await op.db(records.count_snapshots, volume.id)
    if count:
        raise exception.VolumeIsBusy(
            volume_id=volume.id, reason=f"it has {count} snapshot(s)"
        )


async def create_group_from_src(op: Operation) -> None:
    try:
        await _create_from_src(op)
    except asyncio.CancelledError:
        raise  # stopping: the operation is done again at the next start
    except BaseException:
        # The group stays, in error; the volumes it was making go.
        _, group = await op.load_group(op.resource_id)
        await op.db(_forget_volumes, [v.id for v in group.volumes])
        raise


def _forget_volumes(session: Session, volume_ids: list[str]) -> None:
    for volume_id in volume_ids:
        records.delete(session, "volume", volume_id)


async def _create_from_src(op: Operation) -> None:
    _, group = await op.load_group(op.resource_id)
    _consistency_possible(op, group)
    source = await _source(op, group)
    group = await op.begin("creating")
    update, members = await op.call(
        methods(op).create_group_from_src, op.context, group, group.volumes, *source
    )
    check_model_update(f"create_group_from_src {group.id}", update, members)
    updates = kept(op, members)

    def volumes(session: Session) -> None:
        for volume in group.volumes:
            extra = updates.get(volume.id, {})
            records.update(session, "volume", volume.id, status="available", **extra)

    await op.finish(status="available", also=volumes)


async def _source(
    op: Operation, group: Group
) -> tuple[
    GroupSnapshot | None, list[Snapshot] | None, Group | None, list[Volume] | None
]:
    """The source of a group made from one, checked against its new volumes:
    (group_snapshot, snapshots, source_group, source_vols)."""
    if op.args.get("group_snapshot_id"):
        record, group_snapshot, snapshots = await op.load_group_snapshot(
            op.args["group_snapshot_id"]
        )
        _require(
            record["status"] == "available",
            f"group snapshot {group_snapshot.id} is {record['status']}",
        )
        snaps = {s.id: s for s in snapshots}
        for volume in group.volumes:
            snap = snaps.get(str(volume.snapshot_id))
            _require(
                snap is not None,
                f"volume {volume.id}: {volume.snapshot_id} is not a snapshot of "
                f"group snapshot {group_snapshot.id}",
            )
            assert snap is not None
            _require(
                volume.size >= snap.volume_size,
                f"volume {volume.id}: size {volume.size} is below its snapshot's",
            )
        return group_snapshot, snapshots, None, None
    record, source = await op.load_group(op.args["source_group_id"])
    _require(
        record["status"] == "available", f"group {source.id} is {record['status']}"
    )
    by_id = {v.id: v for v in source.volumes}
    for volume in group.volumes:
        src = by_id.get(str(volume.source_volid))
        _require(
            src is not None and src.status in MEMBER_STATUSES,
            f"volume {volume.id}: {volume.source_volid} is not a usable member of "
            f"group {source.id}",
        )
        assert src is not None
        _require(
            volume.size >= src.size,
            f"volume {volume.id}: size {volume.size} is below its source's",
        )
    return None, None, source, source.volumes
