"""The journal's table: one row per accepted operation, and how far it got.

An operation is journaled ``accepted`` before the backend is touched, goes
``running`` when it starts, and ends ``done``, ``failed``, ``rolled_back``
or ``skipped``. ``message_id`` (oslo.messaging's ``_unique_id``) is unique,
so a redelivered message can never be journaled twice. Finished rows are
kept for ``[database] journal_retention_days``; unfinished ones never go.

Each row has an ``owner``: the worker incarnation that runs it
(``<host>@<backend>/<incarnation>``). A worker re-owns its previous
incarnations' unfinished rows when it starts, and a member of a cluster
re-owns a dead member's; every change of state checks the owner, so a
worker whose work was taken over can no longer record anything for it.
``operation_volumes`` lists the volumes each operation touches, so that
members of a cluster run a volume's operations in journal order.

Functions of a session, run as store work items (see ``store.py``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from volworker.state import _sql
from volworker.state.models import OperationRecord, OperationVolume, utcnow

__all__ = [
    "FINISHED",
    "OWNER",
    "STATES",
    "UNFINISHED",
    "TakenOver",
    "earlier_unfinished",
    "incarnations_of",
    "insert",
    "owned_by",
    "owners",
    "purge",
    "reown",
    "serialize_accepts",
    "set_state",
    "unfinished",
    "unfinished_owners",
]

UNFINISHED = ("accepted", "running")
FINISHED = ("done", "failed", "rolled_back", "skipped")
STATES = UNFINISHED + FINISHED

_OPERATIONS = _sql.table(OperationRecord)
_VOLUMES = _sql.table(OperationVolume)
_INSERT_VOLUME = sa.insert(_VOLUMES)


class TakenOver(Exception):
    """The operation has another owner now: this worker must leave it."""

    def __init__(self, seq: int, owner: str) -> None:
        super().__init__(f"operation {seq} is no longer {owner}'s: it was taken over")
        self.seq = seq


def insert(
    session: Session, *, volumes: Iterable[str] = (), **fields: Any
) -> int | None:
    """Journal an operation touching ``volumes`` and return its seq; None
    (and nothing added) when its message id was journaled before."""
    fields.setdefault("state", "accepted")
    fields.setdefault("args", {})
    fields.setdefault("created_at", utcnow())
    if fields["state"] not in STATES:
        raise ValueError(f"unknown operation state {fields['state']!r}")
    statement = _sql.insert_new(OperationRecord, _sql.dialect(session), "seq")
    found = _sql.execute(
        session, statement, _sql.values(OperationRecord, fields)
    ).scalar()
    if found is None:
        return None
    seq = int(found)
    for volume_id in sorted(set(volumes)):
        _sql.execute(session, _INSERT_VOLUME, {"seq": seq, "volume_id": volume_id})
    return seq


@functools.cache
def _update_owned(names: frozenset[str]) -> sa.Update:
    """``UPDATE operations SET <names> WHERE seq = :_key AND owner = :_owner``."""
    return (
        sa.update(_OPERATIONS)
        .where(_OPERATIONS.c.seq == sa.bindparam("_key"))
        .where(_OPERATIONS.c.owner == sa.bindparam("_owner"))
        .values({name: sa.bindparam(name) for name in names})
    )


#: Any fixed number: the advisory lock the members of a cluster take to
#: journal new entries one transaction after another.
_ACCEPT_LOCK = 0x766F6C6A6E6C  # "voljnl"


def serialize_accepts(session: Session) -> None:
    """Let no other worker journal a new entry until this transaction ends.

    A journal entry's seq is drawn when it is inserted but seen by others
    only when its transaction commits; two members journaling at once could
    make an entry with a lower seq appear after one with a higher seq, and an
    operation checking for earlier work on its volumes would miss it. Under
    this lock entries appear in seq order. SQLite needs nothing: a
    transaction there holds the database's one write lock from its start.
    """
    if _sql.dialect(session) == "postgresql":
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ACCEPT_LOCK}
        )


def set_state(
    session: Session,
    seq: int,
    state: str,
    error: str | None = None,
    started_at: dt.datetime | None = None,
    *,
    owner: str,
) -> None:
    """Move ``owner``'s operation to ``state``: ``running`` stamps
    ``started_at``, a finished state ``finished_at`` and ``error``;
    ``started_at`` when the operation began without being marked running.

    Raises TakenOver when the operation is no longer ``owner``'s (the work
    item fails, so nothing else it wrote is kept).
    """
    if state not in STATES:
        raise ValueError(f"unknown operation state {state!r}")
    values: dict[str, Any] = {"state": state}
    if started_at is not None:
        values["started_at"] = started_at
    if state == "running":
        values["started_at"] = utcnow()
    elif state in FINISHED:
        values.update(finished_at=utcnow(), error=error)
    statement = _update_owned(frozenset(values))
    result = _sql.execute(session, statement, {"_key": seq, "_owner": owner, **values})
    if result.rowcount == 0:
        raise TakenOver(seq, owner)


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


def _entries(session: Session, seqs: Iterable[int]) -> list[dict[str, Any]]:
    """The rows of ``seqs`` in journal order, each with its ``volumes``."""
    wanted = sorted(seqs)
    if not wanted:
        return []
    rows = session.execute(
        sa.select(_OPERATIONS)
        .where(_OPERATIONS.c.seq.in_(wanted))
        .order_by(_OPERATIONS.c.seq)
    )
    entries = [_sql.row_of(OperationRecord, row._mapping).to_dict() for row in rows]
    touched: dict[int, list[str]] = {}
    keys = session.execute(
        sa.select(_VOLUMES.c.seq, _VOLUMES.c.volume_id).where(
            _VOLUMES.c.seq.in_(wanted)
        )
    )
    for seq, volume_id in keys:
        touched.setdefault(seq, []).append(volume_id)
    for entry in entries:
        entry["volumes"] = sorted(touched.get(entry["seq"], ()))
    return entries


def reown(
    session: Session, service: str, owner: str, previous: sa.ColumnElement[bool]
) -> list[dict[str, Any]]:
    """Make ``owner`` the owner of the service's unfinished operations whose
    owner matches ``previous`` (see :func:`incarnations_of`, :func:`owned_by`);
    return them in journal order, each with its ``volumes``.

    The rows change in one statement, so when two workers re-own the same
    rows at once one of them gets them all and the other none.
    """
    statement = (
        sa.update(_OPERATIONS)
        .where(_OPERATIONS.c.service == service)
        .where(_OPERATIONS.c.state.in_(UNFINISHED))
        .where(_OPERATIONS.c.owner != owner)
        .where(previous)
        .values(owner=owner)
        .returning(_OPERATIONS.c.seq)
    )
    return _entries(session, session.execute(statement).scalars())


OWNER = _OPERATIONS.c.owner


def incarnations_of(
    member: str | None, column: sa.ColumnElement[Any] = OWNER
) -> sa.ColumnElement[bool]:
    """Owners (in ``column``) that are incarnations of ``member``
    (``<host>@<backend>``); None: any owner at all (a backend served by one
    process only)."""
    if member is None:
        return sa.true()
    return sa.or_(column == member, column.startswith(member + "/", autoescape=True))


def owned_by(
    owner: str, column: sa.ColumnElement[Any] = OWNER
) -> sa.ColumnElement[bool]:
    return column == owner


def owners(session: Session, service: str) -> dict[str, int]:
    """Who owns the service's unfinished operations, and how many each."""
    query = (
        sa.select(OWNER, sa.func.count())
        .where(_OPERATIONS.c.service == service)
        .where(_OPERATIONS.c.state.in_(UNFINISHED))
        .group_by(OWNER)
    )
    return {owner: int(count) for owner, count in session.execute(query)}


def unfinished_owners(session: Session, action: str, resource_id: str) -> set[str]:
    """Who owns unfinished ``action`` operations on ``resource_id``."""
    query = (
        sa.select(OWNER)
        .where(_OPERATIONS.c.action == action)
        .where(_OPERATIONS.c.resource_id == resource_id)
        .where(_OPERATIONS.c.state.in_(UNFINISHED))
    )
    return set(session.execute(query).scalars())


def earlier_unfinished(
    session: Session, service: str, seq: int, volumes: Iterable[str]
) -> set[int]:
    """Unfinished operations of the service before ``seq`` that touch one
    of ``volumes``: what must run first."""
    wanted = list(volumes)
    if not wanted:
        return set()
    query = (
        sa.select(_VOLUMES.c.seq)
        .join(_OPERATIONS, _OPERATIONS.c.seq == _VOLUMES.c.seq)
        .where(_VOLUMES.c.volume_id.in_(wanted))
        .where(_VOLUMES.c.seq < seq)
        .where(_OPERATIONS.c.service == service)
        .where(_OPERATIONS.c.state.in_(UNFINISHED))
    )
    return set(session.execute(query).scalars())


def purge(session: Session, service: str, older_than: dt.datetime) -> int:
    """Delete the service's operations finished before ``older_than``; count them."""
    gone = (
        sa.select(_OPERATIONS.c.seq)
        .where(_OPERATIONS.c.service == service)
        .where(_OPERATIONS.c.state.in_(FINISHED))
        .where(_OPERATIONS.c.finished_at < older_than)
    )
    session.execute(sa.delete(_VOLUMES).where(_VOLUMES.c.seq.in_(gone)))
    result = session.execute(sa.delete(_OPERATIONS).where(_OPERATIONS.c.seq.in_(gone)))
    return int(getattr(result, "rowcount", 0))
