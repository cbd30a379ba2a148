"""Volumes, snapshots and attachments: the worker's records of the backend.

Functions of a session, run as store work items (see ``store.py``). Rows come
back as detached model instances; fields are named by model attribute.
Ownership (which service a record belongs to) is the caller's check.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from volworker import exception, objects
from volworker.state import _sql
from volworker.state.models import (
    AttachmentRecord,
    Base,
    GroupRecord,
    GroupSnapshotRecord,
    SnapshotRecord,
    VolumeRecord,
    utcnow,
)

__all__ = [
    "ATTACHMENT_SERVER",
    "KINDS",
    "UNALLOCATED_STATUSES",
    "apply",
    "attach",
    "attachment_servers",
    "attachment_servers_of",
    "attachments",
    "count_snapshots",
    "delete",
    "detach",
    "driver_objects",
    "insert",
    "list_volumes",
    "load",
    "mark_lost",
    "pool_allocations",
    "reown_attachments",
    "snapshot_volume_id",
    "update",
    "volume_ids",
]

KINDS: dict[str, type[Base]] = {
    "volume": VolumeRecord,
    "snapshot": SnapshotRecord,
    "group": GroupRecord,
    "group_snapshot": GroupSnapshotRecord,
}

#: Volume statuses that hold no space on the backend. ``error`` is a create
#: (or manage) that failed, so nothing of it is placed; every other status,
#: the transitional ones and ``error_deleting``/``error_extending``
#: included, still occupies its pool. A deleted volume has no row at all.
UNALLOCATED_STATUSES = frozenset({"error"})

_VOLUMES = _sql.table(VolumeRecord)
_SNAPSHOTS = _sql.table(SnapshotRecord)
_ATTACHMENTS = _sql.table(AttachmentRecord)


def insert(session: Session, kind: str, **fields: Any) -> Any:
    """Add a volume or snapshot; None (and nothing added) when the id is taken.

    Returns the row as a detached model instance.
    """
    now = utcnow()
    model = KINDS[kind]
    if kind in ("volume", "snapshot"):
        fields.setdefault("meta", {})
    fields.setdefault("created_at", now)
    fields.setdefault("updated_at", now)
    fields.setdefault("error", None)
    statement = _sql.insert_new(model, _sql.dialect(session), None)
    result = _sql.execute(session, statement, _sql.values(model, fields))
    if result.rowcount == 0:
        return None
    return _sql.detached(model, fields)


def load(session: Session, kind: str, resource_id: str) -> Any:
    """The volume or snapshot as a detached model instance, or None."""
    model = KINDS[kind]
    row = session.execute(_sql.select_by(model, "id"), {"_key": resource_id}).first()
    return None if row is None else _sql.row_of(model, row._mapping)


#: each kind's error, and its field, for a record that is not there
_NOT_FOUND: dict[str, tuple[type[exception.VolworkerError], str]] = {
    "volume": (exception.VolumeNotFound, "volume_id"),
    "snapshot": (exception.SnapshotNotFound, "snapshot_id"),
    "group": (exception.GroupNotFound, "group_id"),
    "group_snapshot": (exception.GroupSnapshotNotFound, "group_snapshot_id"),
}


def load_owned(session: Session, service: str, kind: str, resource_id: str) -> Any:
    """The record as :func:`load` gives it when ``service`` owns it; else
    its kind's NotFound error."""
    row = load(session, kind, resource_id)
    if row is None or row.service != service:
        error, field = _NOT_FOUND[kind]
        raise error(**{field: resource_id})
    return row


def update(session: Session, kind: str, resource_id: str, **fields: Any) -> None:
    """Set ``fields`` (and ``updated_at``) on the record."""
    model = KINDS[kind]
    fields.setdefault("updated_at", utcnow())
    values = _sql.values(model, fields)
    statement = _sql.update_by(model, "id", frozenset(values))
    _sql.execute(session, statement, {"_key": resource_id, **values})


def apply(row: Any, **fields: Any) -> Any:
    """Set ``fields`` on a detached row, as update() set them in the table."""
    for key, value in fields.items():
        setattr(row, key, value)
    return row


def delete(session: Session, kind: str, resource_id: str) -> None:
    """Forget the record (a volume with its attachments)."""
    session.execute(_sql.delete_by(KINDS[kind], "id"), {"_key": resource_id})
    if kind == "volume":
        session.execute(
            _sql.delete_by(AttachmentRecord, "volume_id"), {"_key": resource_id}
        )


def volume_ids(session: Session, service: str, statuses: tuple[str, ...]) -> list[str]:
    """The ids of the service's volumes in one of ``statuses``."""
    query = sa.select(_VOLUMES.c.id).where(
        _VOLUMES.c.service == service, _VOLUMES.c.status.in_(statuses)
    )
    return list(session.execute(query).scalars())


def list_volumes(
    session: Session,
    service: str,
    marker: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The service's volume records by (created_at, id), after ``marker``."""
    query = sa.select(_VOLUMES).where(_VOLUMES.c.service == service)
    if marker is not None:
        last = load(session, "volume", marker)
        if last is None or last.service != service:
            raise exception.InvalidInput(
                reason=f"marker {marker} is not a known volume"
            )
        query = query.where(
            sa.or_(
                _VOLUMES.c.created_at > last.created_at,
                sa.and_(
                    _VOLUMES.c.created_at == last.created_at,
                    _VOLUMES.c.id > last.id,
                ),
            )
        )
    if limit is not None:
        if limit < 0:
            raise exception.InvalidInput(reason=f"limit {limit} is negative")
        query = query.limit(limit)
    query = query.order_by(_VOLUMES.c.created_at, _VOLUMES.c.id)
    rows = session.execute(query)
    return [_sql.row_of(VolumeRecord, row._mapping).to_dict() for row in rows]


def count_snapshots(session: Session, volume_id: str) -> int:
    query = sa.select(sa.func.count()).where(_SNAPSHOTS.c.volume_id == volume_id)
    return int(session.scalar(query) or 0)


def snapshot_volume_id(session: Session, snapshot_id: str) -> str | None:
    """The id of the snapshot's volume, or None for an unknown snapshot."""
    query = sa.select(_SNAPSHOTS.c.volume_id).where(_SNAPSHOTS.c.id == snapshot_id)
    found = session.scalar(query)
    return None if found is None else str(found)


def pool_allocations(
    session: Session, service: str
) -> dict[str | None, dict[str, int]]:
    """Per pool of the service: ``allocated_capacity_gb`` and ``total_volumes``.

    Volumes in :data:`UNALLOCATED_STATUSES` do not count; volumes recorded
    without a pool count under the key None.
    """
    query = (
        sa.select(
            _VOLUMES.c.pool,
            sa.func.coalesce(sa.func.sum(_VOLUMES.c.size), 0),
            sa.func.count(),
        )
        .where(_VOLUMES.c.service == service)
        .where(_VOLUMES.c.status.not_in(UNALLOCATED_STATUSES))
        .group_by(_VOLUMES.c.pool)
    )
    return {
        pool: {"allocated_capacity_gb": int(size), "total_volumes": int(count)}
        for pool, size, count in session.execute(query)
    }


# Attachments.

_ATTACHMENT_FIELDS = (
    _ATTACHMENTS.c.id,
    _ATTACHMENTS.c.volume_id,
    _ATTACHMENTS.c.connector,
    _ATTACHMENTS.c.connection_info,
)


def attachments(session: Session, volume_id: str) -> list[dict[str, Any]]:
    """The volume's attachments as dicts a Volume can be built from."""
    query = (
        sa.select(*_ATTACHMENT_FIELDS)
        .where(_ATTACHMENTS.c.volume_id == volume_id)
        .order_by(_ATTACHMENTS.c.created_at, _ATTACHMENTS.c.id)
    )
    return [dict(row._mapping) for row in session.execute(query)]


def attach(
    session: Session,
    volume_id: str,
    connector: dict[str, Any],
    connection_info: dict[str, Any],
    served_by: str | None = None,
) -> None:
    """Record the volume's export to ``connector["host"]``, served by the
    worker ``served_by``, replacing an earlier one to the same host."""
    host = connector.get("host")
    if not host:
        raise exception.InvalidInput(reason="the connector names no host")
    detach(session, volume_id, host)
    fields = {
        "id": str(uuid.uuid4()),
        "volume_id": volume_id,
        "connector_host": host,
        "connector": dict(connector),
        "connection_info": connection_info,
        "created_at": utcnow(),
        "served_by": served_by,
    }
    session.execute(sa.insert(_ATTACHMENTS), _sql.values(AttachmentRecord, fields))


#: who serves an attachment, for volworker.state.operations.incarnations_of
ATTACHMENT_SERVER = _ATTACHMENTS.c.served_by


def _service_volumes(service: str) -> sa.Select[Any]:
    return sa.select(_VOLUMES.c.id).where(_VOLUMES.c.service == service)


def reown_attachments(
    session: Session, service: str, owner: str, previous: sa.ColumnElement[bool]
) -> list[dict[str, Any]]:
    """Make ``owner`` serve the service's attachments whose server matches
    ``previous`` (see volworker.state.operations.incarnations_of); return
    them. One statement: of two workers reaching for the same attachments
    at once, one gets them all."""
    statement = (
        sa.update(_ATTACHMENTS)
        .where(_ATTACHMENTS.c.volume_id.in_(_service_volumes(service)))
        .where(
            sa.or_(
                _ATTACHMENTS.c.served_by.is_(None),
                _ATTACHMENTS.c.served_by != owner,
            )
        )
        .where(previous)
        .values(served_by=owner)
        .returning(
            _ATTACHMENTS.c.volume_id,
            _ATTACHMENTS.c.connector,
            _ATTACHMENTS.c.lost,
        )
    )
    return [dict(row._mapping) for row in session.execute(statement)]


def attachment_servers_of(
    session: Session, volume_id: str, host: str | None
) -> set[str]:
    """Who serves the volume's attachment to ``host`` (None: any of its
    attachments), lost ones left out."""
    query = (
        sa.select(_ATTACHMENTS.c.served_by)
        .where(_ATTACHMENTS.c.volume_id == volume_id)
        .where(_ATTACHMENTS.c.served_by.is_not(None))
        .where(_ATTACHMENTS.c.lost.is_(None))
    )
    if host is not None:
        query = query.where(_ATTACHMENTS.c.connector_host == host)
    return {str(server) for server in session.execute(query).scalars()}


def mark_lost(session: Session, volume_id: str, host: str, reason: str) -> None:
    """Say why the attachment of ``volume_id`` to ``host`` is gone for good."""
    session.execute(
        sa.update(_ATTACHMENTS)
        .where(_ATTACHMENTS.c.volume_id == volume_id)
        .where(_ATTACHMENTS.c.connector_host == host)
        .values(lost=reason)
    )


def attachment_servers(session: Session, service: str) -> dict[str, dict[str, int]]:
    """Per worker serving some of the service's attachments: how many, and
    how many of those are lost."""
    query = (
        sa.select(
            ATTACHMENT_SERVER,
            sa.func.count(),
            sa.func.count(_ATTACHMENTS.c.lost),
        )
        .where(_ATTACHMENTS.c.volume_id.in_(_service_volumes(service)))
        .where(ATTACHMENT_SERVER.is_not(None))
        .group_by(ATTACHMENT_SERVER)
    )
    return {
        server: {"attachments": int(count), "lost": int(lost)}
        for server, count, lost in session.execute(query)
    }


def detach(session: Session, volume_id: str, host: str | None) -> int:
    """Forget the volume's attachment to ``host`` (None: every one of them);
    return how many attachments remain."""
    query = sa.delete(_ATTACHMENTS).where(_ATTACHMENTS.c.volume_id == volume_id)
    if host is not None:
        query = query.where(_ATTACHMENTS.c.connector_host == host)
    session.execute(query)
    remaining = sa.select(sa.func.count()).where(_ATTACHMENTS.c.volume_id == volume_id)
    return int(session.scalar(remaining) or 0)


def driver_objects(
    session: Session, service: str
) -> tuple[list[objects.Volume], list[objects.Snapshot]]:
    """Every volume and snapshot of the service as drivers see them."""
    by_volume: dict[str, list[dict[str, Any]]] = {}
    query = (
        sa.select(*_ATTACHMENT_FIELDS)
        .join(_VOLUMES, _VOLUMES.c.id == _ATTACHMENTS.c.volume_id)
        .where(_VOLUMES.c.service == service)
        .order_by(_ATTACHMENTS.c.created_at, _ATTACHMENTS.c.id)
    )
    for row in session.execute(query):
        by_volume.setdefault(row.volume_id, []).append(dict(row._mapping))
    volumes: dict[str, objects.Volume] = {}
    rows = session.execute(
        sa.select(_VOLUMES)
        .where(_VOLUMES.c.service == service)
        .order_by(_VOLUMES.c.created_at, _VOLUMES.c.id)
    )
    for row in rows:
        record = _sql.row_of(VolumeRecord, row._mapping)
        volumes[record.id] = record.to_volume(by_volume.get(record.id, ()))
    snapshots = []
    rows = session.execute(
        sa.select(_SNAPSHOTS)
        .where(_SNAPSHOTS.c.service == service)
        .order_by(_SNAPSHOTS.c.created_at, _SNAPSHOTS.c.id)
    )
    for row in rows:
        record = _sql.row_of(SnapshotRecord, row._mapping)
        if record.volume_id in volumes:
            snapshots.append(record.to_snapshot(volumes[record.volume_id]))
    return list(volumes.values()), snapshots
