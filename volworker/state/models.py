"""The tables of the state store, as SQLAlchemy 2.0 typed declarative models.

Rows never leave a store work item: each record converts itself to plain data
(:meth:`to_dict`, JSON primitives only) or to the objects drivers read
(:meth:`VolumeRecord.to_volume`, :meth:`SnapshotRecord.to_snapshot`).

Datetimes are timezone-aware UTC in Python on every database: SQLite keeps
them as naive UTC text, PostgreSQL as ``timestamptz``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from volworker import objects

__all__ = [
    "AttachmentRecord",
    "Base",
    "GroupRecord",
    "GroupSnapshotRecord",
    "InitiatorDataRecord",
    "OperationRecord",
    "OperationVolume",
    "SnapshotRecord",
    "UTCDateTime",
    "VolumeRecord",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def isoformat(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A datetime stored as UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone-aware one")
        value = value.astimezone(dt.UTC)
        # SQLite has no timezone type; its text always means UTC.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, one step from an aware datetime to the text SQLAlchemy's
        DATETIME stores (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC): a create binds
        six timestamps, and the step-by-step chain cost a tenth of its
        journal work. Elsewhere, SQLAlchemy's own chain."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text


def _sqlite_text(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: give a timezone-aware one")
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return value.isoformat(" ", "microseconds")[:-6]  # less "+00:00"


def _json() -> JSON:
    # none_as_null stores Python None as SQL NULL, not the JSON 'null'.
    return JSON(none_as_null=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class _Resource:
    """Columns volumes and snapshots share."""

    # sort_order puts the shared columns around the class's own ones.
    id: Mapped[str] = mapped_column(String(36), primary_key=True, sort_order=-1)
    service: Mapped[str] = mapped_column(String(255), index=True, sort_order=-1)
    status: Mapped[str] = mapped_column(String(32), index=True)
    size: Mapped[int] = mapped_column(Integer)
    display_name: Mapped[str | None] = mapped_column(String(255))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", _json(), default=dict)
    provider_location: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=utcnow, sort_order=1
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=utcnow, sort_order=1
    )

    def _record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "size": self.size,
            "name": self.display_name,
            "metadata": dict(self.meta or {}),
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }
        if self.status.startswith("error"):
            record["error"] = self.error
        return record


class VolumeRecord(_Resource, Base):
    __tablename__ = "volumes"

    #: ``"<host>@<backend>#<pool>"``.
    host: Mapped[str] = mapped_column(String(255))
    #: None when the volume was placed without naming a pool.
    pool: Mapped[str | None] = mapped_column(String(255))
    volume_type: Mapped[dict[str, Any] | None] = mapped_column(_json())
    snapshot_id: Mapped[str | None] = mapped_column(String(36))
    source_volid: Mapped[str | None] = mapped_column(String(36))
    image_id: Mapped[str | None] = mapped_column(String(255))
    provider_auth: Mapped[str | None] = mapped_column(Text)
    group_id: Mapped[str | None] = mapped_column(String(36), index=True)

    @property
    def host_with_pool(self) -> str:
        service_host, pool = objects.split_host(self.host)
        if pool or not self.pool:
            return self.host
        return f"{service_host}#{self.pool}"

    def to_dict(self) -> dict[str, Any]:
        """The contract's volume record."""
        record = self._record()
        record["host"] = self.host_with_pool
        if self.group_id:
            record["group_id"] = self.group_id
        return record

    def to_volume(self, attachments: Iterable[AttachmentLike] = ()) -> objects.Volume:
        """The driver's view of the volume, with the given attachments.

        ``attachments`` may be rows, their ``to_dict()`` or Attachment objects.
        """
        vtype = self.volume_type
        return objects.Volume(
            id=self.id,
            size=self.size,
            host=self.host_with_pool,
            display_name=self.display_name,
            status=self.status,
            volume_type=(
                objects.VolumeType(
                    name=vtype["name"], extra_specs=dict(vtype.get("extra_specs") or {})
                )
                if vtype
                else None
            ),
            metadata=dict(self.meta or {}),
            snapshot_id=self.snapshot_id,
            source_volid=self.source_volid,
            image_id=self.image_id,
            provider_location=self.provider_location,
            provider_auth=self.provider_auth,
            attachments=[_attachment(a) for a in attachments],
            group_id=self.group_id,
        )


def _attachment(value: AttachmentLike) -> objects.Attachment:
    if isinstance(value, objects.Attachment):
        return value
    if isinstance(value, AttachmentRecord):
        return value.to_attachment()
    return objects.Attachment(
        id=value["id"],
        volume_id=value["volume_id"],
        connector=dict(value["connector"]),
        connection_info=value.get("connection_info"),
    )


class SnapshotRecord(_Resource, Base):
    __tablename__ = "snapshots"

    # No foreign key: the manager orders deletes (snapshots first).
    volume_id: Mapped[str] = mapped_column(String(36), index=True)
    group_snapshot_id: Mapped[str | None] = mapped_column(String(36), index=True)

    def to_dict(self) -> dict[str, Any]:
        """The contract's snapshot record."""
        record = self._record()
        record["volume_id"] = self.volume_id
        if self.group_snapshot_id:
            record["group_snapshot_id"] = self.group_snapshot_id
        return record

    def to_snapshot(self, volume: objects.Volume) -> objects.Snapshot:
        return objects.Snapshot(
            id=self.id,
            volume_id=self.volume_id,
            volume=volume,
            display_name=self.display_name,
            status=self.status,
            metadata=dict(self.meta or {}),
            provider_location=self.provider_location,
            volume_size=self.size,
            group_snapshot_id=self.group_snapshot_id,
        )


class _GroupColumns:
    """Columns groups and group snapshots share."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True, sort_order=-1)
    service: Mapped[str] = mapped_column(String(255), index=True, sort_order=-1)
    status: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=utcnow, sort_order=1
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=utcnow, sort_order=1
    )

    def _record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "name": self.display_name,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }
        if self.status.startswith("error"):
            record["error"] = self.error
        return record


class GroupRecord(_GroupColumns, Base):
    __tablename__ = "groups"

    host: Mapped[str] = mapped_column(String(255))
    group_type: Mapped[dict[str, Any] | None] = mapped_column(_json())

    def to_dict(self) -> dict[str, Any]:
        """The contract's group record, without its ``volume_ids``."""
        record = self._record()
        record["host"] = self.host
        record["group_type"] = self.group_type
        return record

    def to_group(self, volumes: Iterable[objects.Volume] = ()) -> objects.Group:
        gtype = self.group_type
        return objects.Group(
            id=self.id,
            host=self.host,
            display_name=self.display_name,
            status=self.status,
            group_type=(
                objects.GroupType(
                    name=gtype["name"],
                    group_specs=dict(gtype.get("group_specs") or {}),
                )
                if gtype
                else None
            ),
            volumes=list(volumes),
        )


class GroupSnapshotRecord(_GroupColumns, Base):
    __tablename__ = "group_snapshots"

    group_id: Mapped[str] = mapped_column(String(36), index=True)

    def to_dict(self) -> dict[str, Any]:
        """The contract's group snapshot record, without its ``snapshot_ids``."""
        record = self._record()
        record["group_id"] = self.group_id
        return record

    def to_group_snapshot(self, group: objects.Group) -> objects.GroupSnapshot:
        return objects.GroupSnapshot(
            id=self.id,
            group_id=self.group_id,
            group=group,
            display_name=self.display_name,
            status=self.status,
        )


class AttachmentRecord(Base):
    __tablename__ = "attachments"
    __table_args__ = (UniqueConstraint("volume_id", "connector_host"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(36), index=True)
    connector_host: Mapped[str] = mapped_column(String(255))
    connector: Mapped[dict[str, Any]] = mapped_column(_json())
    connection_info: Mapped[dict[str, Any] | None] = mapped_column(_json())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: the worker (owner, see OperationRecord.owner) that serves the export
    served_by: Mapped[str | None] = mapped_column(String(255), index=True)
    #: why the export is gone for good (its member died with node-local data)
    lost: Mapped[str | None] = mapped_column(Text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "volume_id": self.volume_id,
            "connector_host": self.connector_host,
            "connector": dict(self.connector),
            "connection_info": self.connection_info,
            "created_at": isoformat(self.created_at),
            "served_by": self.served_by,
            "lost": self.lost,
        }

    def to_attachment(self) -> objects.Attachment:
        return objects.Attachment(
            id=self.id,
            volume_id=self.volume_id,
            connector=dict(self.connector),
            connection_info=self.connection_info,
        )


AttachmentLike = objects.Attachment | AttachmentRecord | dict[str, Any]


class InitiatorDataRecord(Base):
    """One value a driver saved for an initiator (``connector["initiator"]``),
    handed back to it at the initiator's next attachment."""

    __tablename__ = "initiator_data"

    initiator: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: the service whose driver saved it
    namespace: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)


class OperationVolume(Base):
    """A volume one journaled operation touches (its own, a snapshot's, a
    clone's source): members of a cluster run operations on a volume in
    journal order."""

    __tablename__ = "operation_volumes"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)


class OperationRecord(Base):
    """One accepted operation in the journal."""

    __tablename__ = "operations"
    __table_args__ = (Index("ix_operations_service_state", "service", "state"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: oslo.messaging's ``_unique_id``, to recognise a redelivered message.
    message_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    service: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    #: ``"volume"``, ``"snapshot"``, ``"group"`` or ``"group_snapshot"``.
    resource_type: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(String(36), index=True)
    args: Mapped[dict[str, Any]] = mapped_column(_json(), default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    #: The worker that runs it: ``<host>@<backend>/<incarnation>``, a new
    #: incarnation at every start; recovery and takeover re-own it.
    owner: Mapped[str] = mapped_column(String(255), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "message_id": self.message_id,
            "service": self.service,
            "action": self.action,
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "args": self.args,
            "request_id": self.request_id,
            "state": self.state,
            "owner": self.owner,
            "error": self.error,
            "created_at": isoformat(self.created_at),
            "started_at": isoformat(self.started_at),
            "finished_at": isoformat(self.finished_at),
        }
