"""The operation journal: what the worker accepted, and how far it got.

An operation is journaled (``accepted``) before the backend is touched, goes
``running`` when it starts, and ends ``done``, ``failed``, ``rolled_back``
or ``skipped``. After a crash, :func:`unfinished_operations` lists what must
be finished or rolled back; ``message_id`` (oslo.messaging's ``_unique_id``)
is unique, so a redelivered message is recognised by
:func:`find_operation_by_message`.

Finished operations are kept for ``[database] journal_retention_days`` and
then removed with :func:`purge_operations`; unfinished ones are never purged.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from volworker.state._rows import model_fields, rowcount
from volworker.state.models import OperationRecord, utcnow

__all__ = [
    "FINISHED_STATES",
    "OPERATION_STATES",
    "RESOURCE_TYPES",
    "UNFINISHED_STATES",
    "add_operation",
    "find_operation_by_message",
    "get_operation",
    "purge_operations",
    "set_operation_state",
    "unfinished_operations",
]

UNFINISHED_STATES = ("accepted", "running")
FINISHED_STATES = ("done", "failed", "rolled_back", "skipped")
OPERATION_STATES = UNFINISHED_STATES + FINISHED_STATES
RESOURCE_TYPES = ("volume", "snapshot")

OPERATIONS = cast(sa.Table, OperationRecord.__table__)


def _check_state(state: str) -> None:
    if state not in OPERATION_STATES:
        raise ValueError(f"unknown operation state {state!r}")


def add_operation(session: Session, **fields: Any) -> int:
    """Journal an operation (``accepted`` unless told) and return its seq.

    A ``message_id`` seen before raises :class:`sqlalchemy.exc.IntegrityError`.
    """
    fields = model_fields(OperationRecord, fields)
    fields.setdefault("state", "accepted")
    fields.setdefault("args", {})
    fields.setdefault("created_at", utcnow())
    _check_state(fields["state"])
    if fields.get("resource_type") not in RESOURCE_TYPES:
        raise ValueError(f"resource_type must be one of {RESOURCE_TYPES}")
    # NOTE: every message the worker takes in goes through here; a plain
    # INSERT costs a third of the ORM's unit of work (bench/store_batching.py).
    table = OPERATIONS
    insert = sa.insert(table).returning(table.c.seq)
    return int(session.connection().execute(insert, fields).scalar_one())


def get_operation(session: Session, seq: int) -> dict[str, Any] | None:
    record = session.get(OperationRecord, seq)
    return record.to_dict() if record is not None else None


def find_operation_by_message(
    session: Session, message_id: str
) -> dict[str, Any] | None:
    record = session.scalar(
        sa.select(OperationRecord).where(OperationRecord.message_id == message_id)
    )
    return record.to_dict() if record is not None else None


def set_operation_state(
    session: Session, seq: int, state: str, error: str | None = None
) -> dict[str, Any]:
    """Move an operation to ``state``, stamping ``started_at``/``finished_at``.

    ``running`` sets ``started_at``; a finished state sets ``finished_at``;
    ``error`` replaces the previous one. Raises LookupError for an unknown seq.
    """
    _check_state(state)
    record = session.get(OperationRecord, seq)
    if record is None:
        raise LookupError(f"no operation {seq} in the journal")
    now = utcnow()
    record.state = state
    record.error = error
    if state == "running":
        record.started_at = now
    elif state in FINISHED_STATES:
        record.finished_at = now
    session.flush()
    return record.to_dict()


def unfinished_operations(session: Session, service: str) -> list[dict[str, Any]]:
    """The service's ``accepted`` and ``running`` operations, oldest first."""
    query = (
        sa.select(OperationRecord)
        .where(OperationRecord.service == service)
        .where(OperationRecord.state.in_(UNFINISHED_STATES))
        .order_by(OperationRecord.seq)
    )
    return [record.to_dict() for record in session.scalars(query)]


def purge_operations(session: Session, service: str, older_than: dt.datetime) -> int:
    """Delete the service's operations finished before ``older_than``; count them."""
    query = (
        sa.delete(OperationRecord)
        .where(OperationRecord.service == service)
        .where(OperationRecord.state.in_(FINISHED_STATES))
        .where(OperationRecord.finished_at < older_than)
    )
    return rowcount(session.execute(query))
