"""Group snapshot operations: create (one snapshot per member, taken
together) and delete.

A group snapshot holds its group's key and every member's turn: no member
operation runs inside it. Its member snapshots get ids derived from the
group snapshot's and the member's, so a redo after a crash finds the ones
it already made. When the snapshot fails, the driver has removed what it
made and the worker forgets the member records: the group snapshot is
``error``, with no member snapshot left.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.orm import Session

from volworker import exception
from volworker.manager.groups import (
    MEMBER_STATUSES,
    check_model_update,
    kept,
    methods,
)
from volworker.manager.operation import Operation
from volworker.objects import GroupSnapshot, Snapshot
from volworker.state import groups, records

__all__ = ["create_group_snapshot", "delete_group_snapshot"]

DELETABLE = frozenset({"available", "error", "error_deleting", "deleting", "creating"})


def _members(
    session: Session, service: str, group_snapshot: GroupSnapshot
) -> list[Snapshot]:
    """One ``creating`` snapshot record per member (kept if made before),
    as driver objects."""
    made = []
    for volume in group_snapshot.group.volumes:
        snapshot_id = groups.member_snapshot_id(group_snapshot.id, volume.id)
        records.insert(
            session,
            "snapshot",
            id=snapshot_id,
            volume_id=volume.id,
            service=service,
            status="creating",
            size=volume.size,
            group_snapshot_id=group_snapshot.id,
        )
        row = records.load(session, "snapshot", snapshot_id)
        made.append(row.to_snapshot(volume))
    return made


def _forget(session: Session, snapshot_ids: list[str]) -> None:
    for snapshot_id in snapshot_ids:
        records.delete(session, "snapshot", snapshot_id)


async def create_group_snapshot(op: Operation) -> None:
    _, group_snapshot, _ = await op.load_group_snapshot(op.resource_id)
    group = group_snapshot.group
    if group.status != "available":
        raise exception.InvalidInput(reason=f"group {group.id} is {group.status}")
    if not group.volumes:
        raise exception.InvalidInput(reason=f"group {group.id} has no volumes")
    for volume in group.volumes:
        if volume.status not in MEMBER_STATUSES:
            raise exception.InvalidVolume(
                reason=f"member {volume.id} is {volume.status}"
            )
    group_snapshot = await op.begin("creating")
    snapshots = await op.db(_members, op.runtime.service, group_snapshot)
    try:
        update, members = await op.call(
            methods(op).create_group_snapshot, op.context, group_snapshot, snapshots
        )
        check_model_update(
            f"create_group_snapshot {group_snapshot.id}", update, members
        )
    except asyncio.CancelledError:
        raise  # stopping: done again at the next start
    except BaseException:
        await op.db(_forget, [s.id for s in snapshots])
        raise
    updates = kept(op, members)

    def finished(session: Session) -> None:
        for snap in snapshots:
            extra: dict[str, Any] = {
                k: v
                for k, v in updates.get(snap.id, {}).items()
                if k == "provider_location"
            }
            records.update(session, "snapshot", snap.id, status="available", **extra)

    await op.finish(status="available", also=finished)


async def delete_group_snapshot(op: Operation) -> None:
    record, group_snapshot, snapshots = await op.load_group_snapshot(op.resource_id)
    if record["status"] not in DELETABLE:
        raise exception.InvalidInput(
            reason=f"group snapshot {group_snapshot.id} is {record['status']}"
        )
    group_snapshot = await op.begin("deleting")
    update, members = await op.call(
        methods(op).delete_group_snapshot, op.context, group_snapshot, snapshots
    )
    check_model_update(f"delete_group_snapshot {group_snapshot.id}", update, members)

    def forget(session: Session) -> None:
        _forget(session, [s.id for s in snapshots])

    await op.finish(delete=True, also=forget)
