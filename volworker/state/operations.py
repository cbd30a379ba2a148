"""The journal's table: one row per accepted operation, and how far it got.

An operation is journaled ``accepted`` before the backend is touched, goes
``running`` when it starts, and ends ``done``, ``failed``, ``rolled_back``
or ``skipped``. ``message_id`` (oslo.messaging's ``_unique_id``) is unique,
so a redelivered message can never be journaled twice. Finished rows are
kept for ``[database] journal_retention_days``; unfinished ones never go.

Functions of a session, run as store work items (see ``store.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from volworker.state import _sql
from volworker.state.models import OperationRecord, utcnow

__all__ = [
    "FINISHED",
    "STATES",
    "UNFINISHED",
    "insert",
    "purge",
    "set_state",
    "unfinished",
]

UNFINISHED = ("accepted", "running")
FINISHED = ("done", "failed", "rolled_back", "skipped")
STATES = UNFINISHED + FINISHED

_OPERATIONS = _sql.table(OperationRecord)


def insert(session: Session, **fields: Any) -> int | None:
    """Journal an operation and return its seq; None (and nothing added)
    when its message id was journaled before."""
    fields.setdefault("state", "accepted")
    fields.setdefault("args", {})
    fields.setdefault("created_at", utcnow())
    if fields["state"] not in STATES:
        raise ValueError(f"unknown operation state {fields['state']!r}")
    statement = _sql.insert_new(OperationRecord, _sql.dialect(session), "seq")
    seq = session.execute(statement, _sql.values(OperationRecord, fields)).scalar()
    return None if seq is None else int(seq)


def set_state(
    session: Session,
    seq: int,
    state: str,
    error: str | None = None,
    started_at: dt.datetime | None = None,
) -> None:
    """Move an operation to ``state``: ``running`` stamps ``started_at``, a
    finished state ``finished_at`` and ``error``; ``started_at`` when the
    operation began without being marked running."""
    if state not in STATES:
        raise ValueError(f"unknown operation state {state!r}")
    values: dict[str, Any] = {"state": state}
    if started_at is not None:
        values["started_at"] = started_at
    if state == "running":
        values["started_at"] = utcnow()
    elif state in FINISHED:
        values.update(finished_at=utcnow(), error=error)
    statement = _sql.update_by(OperationRecord, "seq", frozenset(values))
    session.execute(statement, {"_key": seq, **values})


def unfinished(session: Session, service: str) -> list[dict[str, Any]]:
    """The service's ``accepted`` and ``running`` operations, oldest first."""
    query = (
        sa.select(_OPERATIONS)
        .where(_OPERATIONS.c.service == service)
        .where(_OPERATIONS.c.state.in_(UNFINISHED))
        .order_by(_OPERATIONS.c.seq)
    )
    rows = session.execute(query)
    return [_sql.row_of(OperationRecord, row._mapping).to_dict() for row in rows]


def purge(session: Session, service: str, older_than: dt.datetime) -> int:
    """Delete the service's operations finished before ``older_than``; count them."""
    query = (
        sa.delete(_OPERATIONS)
        .where(_OPERATIONS.c.service == service)
        .where(_OPERATIONS.c.state.in_(FINISHED))
        .where(_OPERATIONS.c.finished_at < older_than)
    )
    result = session.execute(query)
    return int(getattr(result, "rowcount", 0))
