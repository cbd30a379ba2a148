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
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from volworker.state.models import Base

__all__ = [
    "delete_by",
    "dialect",
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


def row_of(model: type[Base], mapping: Any) -> Any:
    """A detached model instance from a result row's mapping."""
    return model(**{attr: mapping[key] for attr, key in columns(model).items()})


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
