"""Row helpers the repository functions share."""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from volworker.state.models import Base, utcnow

__all__ = [
    "delete_row",
    "insert_row",
    "model_fields",
    "page_after",
    "rowcount",
    "update_row",
]

#: Names callers may use for a model attribute of another name.
ALIASES = {"metadata": "meta"}

RowT = TypeVar("RowT", bound=Base)


def model_fields(model: type[Base], fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` by attribute name; an unknown field is a programming error."""
    known = {attr.key for attr in sa.inspect(model).column_attrs}
    result = {}
    for key, value in fields.items():
        name = ALIASES.get(key, key)
        if name not in known:
            raise TypeError(f"{model.__name__} has no field {key!r}")
        result[name] = value
    return result


def insert_row(session: Session, model: type[RowT], fields: dict[str, Any]) -> RowT:
    """Add a volume or snapshot row; both timestamps start equal.

    A duplicate id raises :class:`sqlalchemy.exc.IntegrityError` here, inside
    the work item.
    """
    fields.setdefault("meta", {})
    fields.setdefault("created_at", utcnow())
    fields.setdefault("updated_at", fields["created_at"])
    row = model(**fields)
    session.add(row)
    session.flush()
    return row


def update_row(session: Session, row: Base, fields: dict[str, Any]) -> None:
    """Set ``fields`` (by attribute name) and ``updated_at`` on ``row``."""
    fields.setdefault("updated_at", utcnow())
    for key, value in fields.items():
        setattr(row, key, value)
    session.flush()


def delete_row(session: Session, model: type[Base], key: str) -> bool:
    """Delete the row ``key`` of ``model``; False if it was not there."""
    row = session.get(model, key)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def page_after(model: Any, last: Any) -> sa.ColumnElement[bool]:
    """Rows after ``last`` in (created_at, id) order."""
    return sa.or_(
        model.created_at > last.created_at,
        sa.and_(model.created_at == last.created_at, model.id > last.id),
    )


def rowcount(result: sa.Result[Any]) -> int:
    """How many rows a DELETE or UPDATE statement touched."""
    return int(getattr(result, "rowcount", 0))
