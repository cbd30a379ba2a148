"""Plain-SQL reads and writes for the operation path.

Every operation the worker runs journals itself, marks itself running and
closes itself: three short transactions' worth of statements per operation.
The ORM's unit of work costs more CPU than the rest of an operation, so this
path uses SQLAlchemy Core on the same tables. Rows read here come back as
detached model instances, so their ``to_dict()``, ``to_volume()`` and
``to_snapshot()`` serve as elsewhere. Fields are named by model attribute
(``meta``, or ``metadata`` for it).
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from volworker.state.models import (
    AttachmentRecord,
    Base,
    OperationRecord,
    SnapshotRecord,
    VolumeRecord,
    utcnow,
)

__all__ = [
    "MODELS",
    "apply",
    "attachments",
    "delete",
    "insert",
    "insert_operation",
    "load",
    "set_state",
    "update",
    "utcnow",
    "volume_ids",
]

MODELS: dict[str, type[Base]] = {"volume": VolumeRecord, "snapshot": SnapshotRecord}
_ALIASES = {"metadata": "meta"}
_FINISHED = frozenset({"done", "failed", "rolled_back", "skipped"})


def _columns(model: type[Base]) -> dict[str, str]:
    """Attribute name → column key, for one model."""
    return {attr.key: attr.columns[0].key for attr in sa.inspect(model).column_attrs}


_COLUMNS: dict[type[Base], dict[str, str]] = {
    model: _columns(model) for model in (VolumeRecord, SnapshotRecord, OperationRecord)
}


def _values(model: type[Base], fields: dict[str, Any]) -> dict[str, Any]:
    columns = _COLUMNS[model]
    return {columns[_ALIASES.get(key, key)]: value for key, value in fields.items()}


def _table(model: type[Base]) -> sa.Table:
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table


@functools.cache
def _update_by_key(model: type[Base], key: str, columns: frozenset[str]) -> sa.Update:
    """``UPDATE <table> SET <columns> WHERE <key> = :_key``, built once."""
    table = _table(model)
    return (
        sa.update(table)
        .where(table.c[key] == sa.bindparam("_key"))
        .values({name: sa.bindparam(name) for name in columns})
    )


@functools.cache
def _insert_new(model: type[Base], dialect: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING``: a taken key inserts nothing."""
    table = _table(model)
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
    else:
        raise NotImplementedError(f"the state store does not speak {dialect}")
    statement = statement.on_conflict_do_nothing()
    if model is OperationRecord:
        statement = statement.returning(table.c.seq)
    return statement


def _dialect(session: Session) -> str:
    return str(session.get_bind().dialect.name)


@functools.cache
def _select_by_id(model: type[Base]) -> sa.Select[Any]:
    table = _table(model)
    return sa.select(table).where(table.c.id == sa.bindparam("_key"))


def insert(session: Session, kind: str, **fields: Any) -> Any:
    """Add a volume or snapshot; None (and nothing added) when the id is taken.

    Returns the row as a detached model instance.
    """
    now = utcnow()
    fields.setdefault("meta", {})
    fields.setdefault("created_at", now)
    fields.setdefault("updated_at", now)
    fields.setdefault("error", None)
    model = MODELS[kind]
    result = session.execute(
        _insert_new(model, _dialect(session)), _values(model, fields)
    )
    assert isinstance(result, sa.CursorResult)
    if result.rowcount == 0:
        return None
    return model(**{_ALIASES.get(key, key): value for key, value in fields.items()})


def insert_operation(session: Session, **fields: Any) -> int | None:
    """Journal an operation and return its seq; None (and nothing added) when
    its message id was seen before."""
    fields.setdefault("created_at", utcnow())
    values = _values(OperationRecord, fields)
    statement = _insert_new(OperationRecord, _dialect(session))
    seq = session.execute(statement, values).scalar()
    return None if seq is None else int(seq)


def set_state(
    session: Session,
    seq: int,
    state: str,
    error: str | None = None,
    started_at: Any = None,
) -> None:
    """Move an operation to ``state``; ``started_at`` when it was not marked
    running before."""
    values: dict[str, Any] = {"state": state}
    if started_at is not None:
        values["started_at"] = started_at
    if state == "running":
        values["started_at"] = utcnow()
    elif state in _FINISHED:
        values.update(finished_at=utcnow(), error=error)
    statement = _update_by_key(OperationRecord, "seq", frozenset(values))
    session.execute(statement, {"_key": seq, **values})


def update(session: Session, kind: str, resource_id: str, **fields: Any) -> None:
    model = MODELS[kind]
    fields.setdefault("updated_at", utcnow())
    values = _values(model, fields)
    statement = _update_by_key(model, "id", frozenset(values))
    session.execute(statement, {"_key": resource_id, **values})


def apply(row: Any, **fields: Any) -> Any:
    """Set ``fields`` on a detached row, as update() set them in the table."""
    for key, value in fields.items():
        setattr(row, _ALIASES.get(key, key), value)
    return row


@functools.cache
def _delete_by_key(model: type[Base], key: str) -> sa.Delete:
    table = _table(model)
    return sa.delete(table).where(table.c[key] == sa.bindparam("_key"))


def delete(session: Session, kind: str, resource_id: str) -> None:
    session.execute(_delete_by_key(MODELS[kind], "id"), {"_key": resource_id})
    if kind == "volume":
        session.execute(
            _delete_by_key(AttachmentRecord, "volume_id"), {"_key": resource_id}
        )


def load(session: Session, kind: str, resource_id: str) -> Any:
    """The volume or snapshot as a detached model instance, or None."""
    model = MODELS[kind]
    row = session.execute(_select_by_id(model), {"_key": resource_id}).first()
    if row is None:
        return None
    mapping = row._mapping
    return model(**{attr: mapping[key] for attr, key in _COLUMNS[model].items()})


def volume_ids(session: Session, service: str, statuses: tuple[str, ...]) -> list[str]:
    """The ids of the service's volumes in one of ``statuses``."""
    table = _table(VolumeRecord)
    query = sa.select(table.c.id).where(
        table.c.service == service, table.c.status.in_(statuses)
    )
    return list(session.execute(query).scalars())


@functools.cache
def _select_attachments() -> sa.Select[Any]:
    table = _table(AttachmentRecord)
    return (
        sa.select(
            table.c.id, table.c.volume_id, table.c.connector, table.c.connection_info
        )
        .where(table.c.volume_id == sa.bindparam("_key"))
        .order_by(table.c.created_at, table.c.id)
    )


def attachments(session: Session, volume_id: str) -> list[dict[str, Any]]:
    """The volume's attachments as dicts a Volume can be built from."""
    rows = session.execute(_select_attachments(), {"_key": volume_id})
    return [dict(row._mapping) for row in rows]
