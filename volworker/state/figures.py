"""Counts for the metrics endpoint: how much of a worker's work is in the
journal, and how many exports it serves. Work items of the store, run when
Prometheus scrapes, never on the path of a request."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from volworker.state import _sql
from volworker.state.models import AttachmentRecord, OperationRecord

__all__ = ["journal_and_exports"]

_OPERATIONS = _sql.table(OperationRecord)
_ATTACHMENTS = _sql.table(AttachmentRecord)


def journal_and_exports(
    session: Session, *, service: str, owner: str
) -> dict[str, Any]:
    """``{"accepted": n, "running": n, "exports": n}``: the unfinished
    journal entries ``owner`` holds, by state, and the attachments it
    serves that are not lost."""
    states = (
        sa.select(_OPERATIONS.c.state, sa.func.count())
        .where(_OPERATIONS.c.service == service)
        .where(_OPERATIONS.c.state.in_(("accepted", "running")))
        .where(_OPERATIONS.c.owner == owner)
        .group_by(_OPERATIONS.c.state)
    )
    figures: dict[str, Any] = {"accepted": 0, "running": 0}
    figures.update({state: int(count) for state, count in session.execute(states)})
    exports = (
        sa.select(sa.func.count())
        .select_from(_ATTACHMENTS)
        .where(_ATTACHMENTS.c.served_by == owner)
        .where(_ATTACHMENTS.c.lost.is_(None))
    )
    figures["exports"] = int(session.execute(exports).scalar() or 0)
    return figures
