"""Groups and group snapshots: their members, listings and the volumes a
group operation must hold.

Functions of a session, run as store work items (see ``store.py``). The
rows themselves are read and written with :mod:`volworker.state.records`
(kinds ``group`` and ``group_snapshot``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from volworker import exception
from volworker.state import _sql
from volworker.state.models import (
    GroupRecord,
    OperationRecord,
    SnapshotRecord,
    VolumeRecord,
)

__all__ = [
    "list_groups",
    "member_snapshot_id",
    "member_snapshots",
    "members",
    "pending_adds",
    "set_group",
    "with_snapshot_ids",
    "with_volume_ids",
]

_VOLUMES = _sql.table(VolumeRecord)
_SNAPSHOTS = _sql.table(SnapshotRecord)
_GROUPS = _sql.table(GroupRecord)
_OPERATIONS = _sql.table(OperationRecord)


def members(session: Session, group_id: str) -> list[Any]:
    """The group's volumes (detached rows), oldest first."""
    rows = session.execute(
        sa.select(_VOLUMES)
        .where(_VOLUMES.c.group_id == group_id)
        .order_by(_VOLUMES.c.created_at, _VOLUMES.c.id)
    )
    return [_sql.row_of(VolumeRecord, row._mapping) for row in rows]


def member_snapshots(session: Session, group_snapshot_id: str) -> list[Any]:
    """The snapshots a group snapshot took (detached rows), one per member."""
    rows = session.execute(
        sa.select(_SNAPSHOTS)
        .where(_SNAPSHOTS.c.group_snapshot_id == group_snapshot_id)
        .order_by(_SNAPSHOTS.c.created_at, _SNAPSHOTS.c.id)
    )
    return [_sql.row_of(SnapshotRecord, row._mapping) for row in rows]


def member_snapshot_id(group_snapshot_id: str, volume_id: str) -> str:
    """The id of a group snapshot's snapshot of one member: the same every
    time it is asked, so that a redo after a crash makes no second one."""
    return str(uuid.uuid5(uuid.UUID(group_snapshot_id), volume_id))


def set_group(
    session: Session, volume_ids: Iterable[str], group_id: str | None
) -> None:
    """Put the volumes in ``group_id`` (None: in no group)."""
    wanted = list(volume_ids)
    if wanted:
        session.execute(
            sa.update(_VOLUMES)
            .where(_VOLUMES.c.id.in_(wanted))
            .values(group_id=group_id)
        )


def pending_adds(session: Session, service: str, group_id: str) -> set[str]:
    """Volumes that journaled but unfinished ``update_group`` operations
    will add to the group: a group operation queued after them holds these
    volumes' turns too."""
    rows = session.execute(
        sa.select(_OPERATIONS.c.args)
        .where(_OPERATIONS.c.service == service)
        .where(_OPERATIONS.c.action == "update_group")
        .where(_OPERATIONS.c.resource_id == group_id)
        .where(_OPERATIONS.c.state.in_(("accepted", "running")))
    )
    return {volume_id for (args,) in rows for volume_id in args.get("add_volumes", ())}


def list_groups(
    session: Session,
    service: str,
    marker: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The service's group records by (created_at, id), after ``marker``,
    each with its ``volume_ids``."""
    query = sa.select(_GROUPS).where(_GROUPS.c.service == service)
    if marker is not None:
        row = session.execute(_sql.select_by(GroupRecord, "id"), {"_key": marker})
        last = row.first()
        if last is None or last.service != service:
            raise exception.InvalidInput(reason=f"marker {marker} is not a known group")
        query = query.where(
            sa.or_(
                _GROUPS.c.created_at > last.created_at,
                sa.and_(
                    _GROUPS.c.created_at == last.created_at, _GROUPS.c.id > last.id
                ),
            )
        )
    if limit is not None:
        query = query.limit(limit)
    query = query.order_by(_GROUPS.c.created_at, _GROUPS.c.id)
    found = [_sql.row_of(GroupRecord, row._mapping) for row in session.execute(query)]
    return [with_volume_ids(session, row) for row in found]


def with_volume_ids(session: Session, row: Any) -> dict[str, Any]:
    """The group's record with its ``volume_ids``."""
    record = dict(row.to_dict())
    record["volume_ids"] = [v.id for v in members(session, row.id)]
    return record


def with_snapshot_ids(session: Session, row: Any) -> dict[str, Any]:
    """The group snapshot's record with its ``snapshot_ids``."""
    record = dict(row.to_dict())
    record["snapshot_ids"] = [s.id for s in member_snapshots(session, row.id)]
    return record
