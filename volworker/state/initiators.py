"""What drivers save per initiator between attachments.

The seed's ``initialize_connection(volume, connector, initiator_data)``: a
driver may return ``initiator_updates`` with its connection info, and gets
what it saved back the next time the same initiator attaches. Values are
kept per service, so two backends never see each other's.

Functions of a session, run as store work items (see ``store.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.orm import Session

from volworker.state import _sql
from volworker.state.models import InitiatorDataRecord

__all__ = ["load", "update"]

_TABLE = _sql.table(InitiatorDataRecord)


def load(session: Session, initiator: str, namespace: str) -> dict[str, str] | None:
    """What was saved for ``initiator``; None when nothing was."""
    query = sa.select(_TABLE.c.key, _TABLE.c.value).where(
        _TABLE.c.initiator == initiator, _TABLE.c.namespace == namespace
    )
    found = {key: value for key, value in session.execute(query)}
    return found or None


def update(
    session: Session,
    initiator: str,
    namespace: str,
    set_values: Mapping[str, str],
    remove_values: Iterable[str],
) -> None:
    """Save ``set_values`` for ``initiator`` and forget ``remove_values``."""
    gone = set(remove_values) | set(set_values)
    if gone:
        session.execute(
            sa.delete(_TABLE).where(
                _TABLE.c.initiator == initiator,
                _TABLE.c.namespace == namespace,
                _TABLE.c.key.in_(gone),
            )
        )
    if set_values:
        session.execute(
            sa.insert(_TABLE),
            [
                {"initiator": initiator, "namespace": namespace, "key": k, "value": v}
                for k, v in set_values.items()
            ],
        )
