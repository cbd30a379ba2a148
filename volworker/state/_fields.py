"""Helpers the repository functions share."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from volworker.state.models import Base

__all__ = ["model_fields", "page_after", "rowcount"]

#: Names callers may use for a model attribute of another name.
ALIASES = {"metadata": "meta"}


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


def page_after(model: Any, last: Any) -> sa.ColumnElement[bool]:
    """Rows after ``last`` in (created_at, id) order."""
    return sa.or_(
        model.created_at > last.created_at,
        sa.and_(model.created_at == last.created_at, model.id > last.id),
    )


def rowcount(result: sa.Result[Any]) -> int:
    """How many rows a DELETE or UPDATE statement touched."""
    return int(getattr(result, "rowcount", 0))
