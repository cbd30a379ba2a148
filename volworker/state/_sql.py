"""Statements on the state tables, built once and reused.

The worker's reads and writes go through SQLAlchemy Core, not the ORM's unit
of work, which costs more CPU than the rest of an operation. The tables are
still the ORM models' (``models.py``), so alembic migrates them, and rows
come back as detached model instances whose ``to_dict()``, ``to_volume()``
and ``to_snapshot()`` serve the callers. Fields are named by model attribute
(``meta``, not its column name ``metadata``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from volworker.state.models import Base

__all__ = [
    "Executed",
    "delete_by",
    "detached",
    "dialect",
    "execute",
    "insert_new",
    "row_of",
    "select_by",
    "table",
    "update_by",
    "values",
]


@functools.cache
def columns(model: type[Base]) -> dict[str, str]:
    """Attribute name → column key, for one model."""
    return {attr.key: attr.columns[0].key for attr in sa.inspect(model).column_attrs}


def values(model: type[Base], fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` by column key; an unknown field is a programming error."""
    names = columns(model)
    try:
        return {names[key]: value for key, value in fields.items()}
    except KeyError as exc:
        raise TypeError(f"{model.__name__} has no field {exc.args[0]!r}") from None


@functools.cache
def _manager(model: type[Base]) -> Any:
    sa.orm.configure_mappers()
    return sa.inspect(model).class_manager


def detached(model: type[Base], fields: dict[str, Any]) -> Any:
    """A model instance holding ``fields`` (by attribute name), made as the
    ORM makes the instances it loads: no constructor, no attribute events.

    The worker's rows are values, never added to a session, and the
    constructor's event per attribute cost a twentieth of a create's CPU.
    A field not given reads as None, as on a new instance.
    """
    instance = _manager(model).new_instance()
    instance.__dict__.update(fields)
    return instance


def row_of(model: type[Base], mapping: Any) -> Any:
    """A detached model instance from a result row's mapping."""
    return detached(model, {attr: mapping[key] for attr, key in columns(model).items()})


def table(model: type[Base]) -> sa.Table:
    found = model.__table__
    assert isinstance(found, sa.Table)
    return found


def dialect(session: Session) -> str:
    return str(session.get_bind().dialect.name)


@functools.cache
def update_by(model: type[Base], key: str, names: frozenset[str]) -> sa.Update:
    """``UPDATE … SET <names> WHERE <key> = :_key``."""
    t = table(model)
    return (
        sa.update(t)
        .where(t.c[key] == sa.bindparam("_key"))
        .values({name: sa.bindparam(name) for name in names})
    )


@functools.cache
def insert_new(model: type[Base], dialect_name: str, returning: str | None) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING``: a taken key inserts nothing."""
    t = table(model)
    if dialect_name == "postgresql":
        statement: Any = postgresql.insert(t)
    elif dialect_name == "sqlite":
        statement = sqlite.insert(t)
    else:
        raise NotImplementedError(f"the state store does not speak {dialect_name}")
    statement = statement.on_conflict_do_nothing()
    if returning is not None:
        statement = statement.returning(t.c[returning])
    return statement


@functools.cache
def select_by(model: type[Base], key: str) -> sa.Select[Any]:
    t = table(model)
    return sa.select(t).where(t.c[key] == sa.bindparam("_key"))


@functools.cache
def delete_by(model: type[Base], key: str) -> sa.Delete:
    t = table(model)
    return sa.delete(t).where(t.c[key] == sa.bindparam("_key"))


@dataclass(frozen=True)
class _Prepared:
    """A statement compiled once for SQLite's DB-API: its text, and for each
    positional parameter where its value comes from (a key of the caller's
    parameters, or a value the statement holds) and its type's processor."""

    sql: str
    returning: bool
    binds: tuple[tuple[str | None, Any, Callable[[Any], Any] | None], ...]


_prepared: dict[tuple[Any, frozenset[str]], _Prepared | None] = {}
_PREPARED_MAX = 512


def _prepare(statement: Any, dialect: Any, keys: frozenset[str]) -> _Prepared | None:
    """``statement`` for ``keys``, or None when it needs what only
    SQLAlchemy's execution does (a column default computed in Python, a
    parameter computed at execution or expanded into a list)."""
    compiled = statement.compile(dialect=dialect, column_keys=sorted(keys))
    if compiled.insert_prefetch or compiled.update_prefetch or not compiled.positional:
        return None
    if compiled.escaped_bind_names:
        return None
    binds = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        # Where SQLAlchemy's construct_params looks: the key, the name,
        # else the value the statement holds.
        key = bind.key if bind.key in keys else name if name in keys else None
        held_back = key is None and (bind.callable is not None or bind.required)
        if held_back or bind.expanding:
            return None
        # As SQLAlchemy binds: the type as this dialect implements it.
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        binds.append((key, bind.value, process))
    return _Prepared(compiled.string, bool(compiled.returning), tuple(binds))


#: where a session keeps the connections of its transaction (session.info)
_CONNECTION = "volworker.connection"


def _connections(session: Session) -> tuple[Any, Any]:
    """The session's connection and its DB-API connection, looked up once
    per transaction or SAVEPOINT: ``session.connection()`` walks the
    session's transaction state each time, and a create runs five
    statements. A SAVEPOINT just begun is emitted by that lookup, so the
    innermost transaction is the one that counts."""
    held = session.info.get(_CONNECTION)
    if held is not None and held[0] is _innermost(session):
        return held[1], held[2]
    conn = session.connection()  # begins the transaction, or the SAVEPOINT
    raw = conn.connection.driver_connection
    session.info[_CONNECTION] = (_innermost(session), conn, raw)
    return conn, raw


def _innermost(session: Session) -> Any:
    return session.get_nested_transaction() or session.get_transaction()


def execute(session: Session, statement: Any, params: dict[str, Any]) -> Executed:
    """Execute one of this module's statements with ``params`` (one row).

    On SQLite, the statement is compiled once per set of parameter names
    and run on the session's DB-API connection: the same transaction, and
    about a fifth of the CPU of ``session.execute``, whose per-statement
    bookkeeping (execution context, result, events) was the larger part of
    a create's journal work. Elsewhere, and for a statement that needs more
    than its compiled form (a Python column default), ``session.execute``.
    """
    conn, raw = _connections(session)
    dialect = conn.dialect
    if dialect.name != "sqlite":
        return _executed(session.execute(statement, params))
    key = (statement, frozenset(params))
    try:
        prepared = _prepared[key]
    except KeyError:
        prepared = _prepare(statement, dialect, key[1])
        # The statements here are built once; a bound keeps one built per
        # call from growing the cache without end.
        if len(_prepared) < _PREPARED_MAX:
            _prepared[key] = prepared
    if prepared is None:
        return _executed(session.execute(statement, params))
    values = []
    try:
        for name, held, process in prepared.binds:
            value = held if name is None else params[name]
            values.append(value if process is None else process(value))
    except Exception as exc:
        raise sa.exc.StatementError(
            f"({type(exc).__module__}.{type(exc).__name__}) {exc}",
            prepared.sql,
            params,
            exc,
        ) from exc
    cursor = raw.cursor()
    try:
        cursor.execute(prepared.sql, values)
        row = cursor.fetchone() if prepared.returning else None
        return Executed(cursor.rowcount, row)
    except dialect.loaded_dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(
            prepared.sql,
            values,
            exc,
            dialect.loaded_dbapi.Error,
            dialect=dialect,
        ) from exc
    finally:
        cursor.close()


class Executed:
    """What a statement did: rows it touched, and its RETURNING row."""

    __slots__ = ("row", "rowcount")

    def __init__(self, rowcount: int, row: Any = None) -> None:
        self.rowcount = rowcount
        self.row = row

    def scalar(self) -> Any:
        return None if self.row is None else self.row[0]


def _executed(result: Any) -> Executed:
    row = result.first() if result.returns_rows else None
    return Executed(getattr(result, "rowcount", -1), row)
