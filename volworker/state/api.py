"""Repository functions: store work items for volumes, snapshots and attachments.

Each function takes the work item's :class:`~sqlalchemy.orm.Session` first
and returns plain data (``to_dict()`` records), except ``get_volume`` and
``get_snapshot``, which return the row for the caller to convert inside the
same work item::

    record = await store.run(lambda s: api.get_volume_dict(s, volume_id))
    volume = await store.run(lambda s: api.volume_object(s, volume_id))

Fields are given by model attribute name; ``metadata`` is accepted for
``meta``. The journal's functions live in :mod:`volworker.state.journal` and
are re-exported here.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from volworker import exception, objects
from volworker.state._rows import (
    delete_row,
    insert_row,
    model_fields,
    page_after,
    rowcount,
    update_row,
)
from volworker.state.journal import (
    add_operation,
    find_operation_by_message,
    get_operation,
    purge_operations,
    set_operation_state,
    unfinished_operations,
)
from volworker.state.models import (
    AttachmentRecord,
    SnapshotRecord,
    VolumeRecord,
    utcnow,
)

__all__ = [
    "UNALLOCATED_STATUSES",
    "add_attachment",
    "add_operation",
    "add_snapshot",
    "add_volume",
    "count_snapshots",
    "delete_attachment",
    "delete_snapshot",
    "delete_volume",
    "find_operation_by_message",
    "get_attachment",
    "get_operation",
    "get_snapshot",
    "get_snapshot_dict",
    "get_volume",
    "get_volume_dict",
    "list_attachments",
    "list_snapshots",
    "list_volumes",
    "pool_allocations",
    "purge_operations",
    "set_operation_state",
    "snapshot_object",
    "unfinished_operations",
    "update_snapshot",
    "update_volume",
    "volume_object",
]

#: Volume statuses that hold no space on the backend. ``error`` is a create
#: (or manage) that failed, so nothing of it is placed; every other status,
#: the transitional ones and ``error_deleting``/``error_extending``
#: included, still occupies its pool. A deleted volume has no row at all.
UNALLOCATED_STATUSES = frozenset({"error"})


# Volumes.


def _placement(host: str, pool: str | None) -> tuple[str, str | None]:
    """``("<host>@<backend>#<pool>", pool)`` from a host and an optional pool.

    Without a pool in either, the volume is recorded without one.
    """
    service_host, host_pool = objects.split_host(host)
    if pool and host_pool and pool != host_pool:
        raise exception.InvalidInput(reason=f"host {host} is not in pool {pool}")
    pool = pool or host_pool or None
    return (f"{service_host}#{pool}" if pool else service_host), pool


def get_volume(session: Session, volume_id: str) -> VolumeRecord | None:
    return session.get(VolumeRecord, volume_id)


def _volume(session: Session, volume_id: str) -> VolumeRecord:
    record = session.get(VolumeRecord, volume_id)
    if record is None:
        raise exception.VolumeNotFound(volume_id=volume_id)
    return record


def get_volume_dict(session: Session, volume_id: str) -> dict[str, Any]:
    """The volume's record; raise VolumeNotFound."""
    return _volume(session, volume_id).to_dict()


def volume_object(session: Session, volume_id: str) -> objects.Volume:
    """The volume as drivers see it, with its attachments."""
    record = _volume(session, volume_id)
    return record.to_volume(_attachments(session, volume_id))


def list_volumes(
    session: Session,
    service: str,
    marker: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The service's volumes by (created_at, id), after the ``marker`` id."""
    query = sa.select(VolumeRecord).where(VolumeRecord.service == service)
    if marker is not None:
        last = session.get(VolumeRecord, marker)
        if last is None or last.service != service:
            raise exception.InvalidInput(
                reason=f"marker {marker} is not a known volume"
            )
        query = query.where(page_after(VolumeRecord, last))
    if limit is not None:
        if limit < 0:
            raise exception.InvalidInput(reason=f"limit {limit} is negative")
        query = query.limit(limit)
    query = query.order_by(VolumeRecord.created_at, VolumeRecord.id)
    return [record.to_dict() for record in session.scalars(query)]


def add_volume(session: Session, **fields: Any) -> dict[str, Any]:
    """Add a volume; ``pool`` may come from ``host`` and ``service`` from both.

    A duplicate id raises :class:`sqlalchemy.exc.IntegrityError`.
    """
    fields = model_fields(VolumeRecord, fields)
    if "host" not in fields:
        raise exception.InvalidInput(reason="a volume needs a host")
    fields["host"], fields["pool"] = _placement(fields["host"], fields.get("pool"))
    fields.setdefault("service", objects.split_host(fields["host"])[0])
    return insert_row(session, VolumeRecord, fields).to_dict()


def update_volume(session: Session, volume_id: str, **fields: Any) -> dict[str, Any]:
    """Change the volume's fields and its ``updated_at``; raise VolumeNotFound."""
    record = _volume(session, volume_id)
    fields = model_fields(VolumeRecord, fields)
    if "host" in fields:
        host = fields["host"]
        pool = fields.get("pool") or objects.split_host(host)[1] or record.pool
        fields["host"], fields["pool"] = _placement(host, pool)
    elif "pool" in fields:
        host = objects.split_host(record.host)[0]
        fields["host"], fields["pool"] = _placement(host, fields["pool"])
    update_row(session, record, fields)
    return record.to_dict()


def delete_volume(session: Session, volume_id: str) -> bool:
    """Forget the volume and its attachments; False if it was not there."""
    delete_attachment(session, volume_id)
    return delete_row(session, VolumeRecord, volume_id)


def pool_allocations(
    session: Session, service: str
) -> dict[str | None, dict[str, int]]:
    """Per pool of the service: ``allocated_capacity_gb`` and ``total_volumes``.

    Volumes in :data:`UNALLOCATED_STATUSES` do not count; volumes recorded
    without a pool count under the key None.
    """
    query = (
        sa.select(
            VolumeRecord.pool,
            sa.func.coalesce(sa.func.sum(VolumeRecord.size), 0),
            sa.func.count(),
        )
        .where(VolumeRecord.service == service)
        .where(VolumeRecord.status.not_in(UNALLOCATED_STATUSES))
        .group_by(VolumeRecord.pool)
    )
    return {
        pool: {"allocated_capacity_gb": int(size), "total_volumes": int(count)}
        for pool, size, count in session.execute(query)
    }


# Snapshots.


def get_snapshot(session: Session, snapshot_id: str) -> SnapshotRecord | None:
    return session.get(SnapshotRecord, snapshot_id)


def _snapshot(session: Session, snapshot_id: str) -> SnapshotRecord:
    record = session.get(SnapshotRecord, snapshot_id)
    if record is None:
        raise exception.SnapshotNotFound(snapshot_id=snapshot_id)
    return record


def get_snapshot_dict(session: Session, snapshot_id: str) -> dict[str, Any]:
    """The snapshot's record; raise SnapshotNotFound."""
    return _snapshot(session, snapshot_id).to_dict()


def snapshot_object(session: Session, snapshot_id: str) -> objects.Snapshot:
    """The snapshot as drivers see it, with its volume."""
    record = _snapshot(session, snapshot_id)
    return record.to_snapshot(volume_object(session, record.volume_id))


def list_snapshots(session: Session, volume_id: str) -> list[dict[str, Any]]:
    """The volume's snapshots by (created_at, id)."""
    query = (
        sa.select(SnapshotRecord)
        .where(SnapshotRecord.volume_id == volume_id)
        .order_by(SnapshotRecord.created_at, SnapshotRecord.id)
    )
    return [record.to_dict() for record in session.scalars(query)]


def count_snapshots(session: Session, volume_id: str) -> int:
    query = sa.select(sa.func.count()).where(SnapshotRecord.volume_id == volume_id)
    return int(session.scalar(query) or 0)


def add_snapshot(session: Session, **fields: Any) -> dict[str, Any]:
    """Add a snapshot; ``size`` and ``service`` default to its volume's.

    Raises VolumeNotFound when they must come from a volume that is not
    there; a duplicate id raises :class:`sqlalchemy.exc.IntegrityError`.
    """
    fields = model_fields(SnapshotRecord, fields)
    if "size" not in fields or "service" not in fields:
        volume = _volume(session, fields["volume_id"])
        fields.setdefault("size", volume.size)
        fields.setdefault("service", volume.service)
    return insert_row(session, SnapshotRecord, fields).to_dict()


def update_snapshot(
    session: Session, snapshot_id: str, **fields: Any
) -> dict[str, Any]:
    """Change the snapshot's fields and its ``updated_at``; raise SnapshotNotFound."""
    record = _snapshot(session, snapshot_id)
    update_row(session, record, model_fields(SnapshotRecord, fields))
    return record.to_dict()


def delete_snapshot(session: Session, snapshot_id: str) -> bool:
    """Forget the snapshot; False if it was not there."""
    return delete_row(session, SnapshotRecord, snapshot_id)


# Attachments.


def add_attachment(
    session: Session,
    volume_id: str,
    connector: dict[str, Any],
    *,
    connector_host: str | None = None,
    connection_info: dict[str, Any] | None = None,
    attachment_id: str | None = None,
) -> dict[str, Any]:
    """Record an export; ``connector_host`` defaults to ``connector["host"]``.

    A second attachment of the volume to the same host raises
    :class:`sqlalchemy.exc.IntegrityError`.
    """
    host = connector_host or connector.get("host")
    if not host:
        raise exception.InvalidInput(reason="the connector names no host")
    record = AttachmentRecord(
        id=attachment_id or str(uuid.uuid4()),
        volume_id=volume_id,
        connector_host=host,
        connector=dict(connector),
        connection_info=connection_info,
        created_at=utcnow(),
    )
    session.add(record)
    session.flush()
    return record.to_dict()


def get_attachment(
    session: Session, volume_id: str, connector_host: str
) -> dict[str, Any] | None:
    record = session.scalar(
        sa.select(AttachmentRecord).where(
            AttachmentRecord.volume_id == volume_id,
            AttachmentRecord.connector_host == connector_host,
        )
    )
    return record.to_dict() if record is not None else None


def _attachments(session: Session, volume_id: str) -> list[AttachmentRecord]:
    query = (
        sa.select(AttachmentRecord)
        .where(AttachmentRecord.volume_id == volume_id)
        .order_by(AttachmentRecord.created_at, AttachmentRecord.id)
    )
    return list(session.scalars(query))


def list_attachments(session: Session, volume_id: str) -> list[dict[str, Any]]:
    return [record.to_dict() for record in _attachments(session, volume_id)]


def delete_attachment(
    session: Session, volume_id: str, connector_host: str | None = None
) -> int:
    """Forget the volume's attachment to ``connector_host`` (None: all of them).

    Returns how many were deleted.
    """
    query = sa.delete(AttachmentRecord).where(AttachmentRecord.volume_id == volume_id)
    if connector_host is not None:
        query = query.where(AttachmentRecord.connector_host == connector_host)
    return rowcount(session.execute(query))
