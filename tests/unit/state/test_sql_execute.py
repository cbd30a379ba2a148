"""``_sql.execute`` writes and reports exactly what ``session.execute`` does."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from volworker.state import _sql
from volworker.state.models import OperationRecord, VolumeRecord

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
#: SQLite's DATETIME keeps microseconds even when they are 0, str() does not
WHOLE_SECOND = dt.datetime(
    2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))
)


def _volume(volume_id: str) -> dict[str, Any]:
    return _sql.values(
        VolumeRecord,
        {
            "id": volume_id,
            "service": "h@b",
            "host": "h@b#p",
            "pool": "p",
            "size": 1,
            "status": "creating",
            "display_name": "ü",
            "volume_type": {"name": "t", "extra_specs": {"k": "v"}},
            "meta": {"a": [1, 2]},
            "created_at": NOW,
            "updated_at": WHOLE_SECOND,
            "error": None,
        },
    )


def _raw(session: Session, volume_id: str) -> tuple[Any, ...]:
    """The row as the database holds it, past every type processor."""
    return tuple(
        session.connection()
        .exec_driver_sql("SELECT * FROM volumes WHERE id = ?", (volume_id,))
        .one()
    )


def _both(call: Any, statement: Any, fast: dict[str, Any], slow: dict[str, Any]) -> Any:
    def work(session: Session) -> tuple[Any, Any]:
        return _sql.execute(session, statement, fast), session.execute(statement, slow)

    return call(work)


def test_an_insert_stores_the_same_bytes(call: Any, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the fast path is SQLite's; elsewhere it is session.execute")
    statement = _sql.insert_new(VolumeRecord, "sqlite", None)
    fast, slow = _both(call, statement, _volume("a"), _volume("b"))
    assert fast.rowcount == slow.rowcount == 1
    # It took the fast path: compiled once, no column default left to fill.
    assert _sql._prepared[(statement, frozenset(_volume("a")))] is not None
    a, b = call(lambda s: (_raw(s, "a"), _raw(s, "b")))
    assert a[1:] == b[1:]
    taken = call(lambda s: _sql.execute(s, statement, _volume("a")))
    assert taken.rowcount == 0


def test_returning_and_update_rowcounts(call: Any) -> None:
    statement = _sql.insert_new(OperationRecord, _dialect(call), "seq")
    fields = {
        "message_id": "m1",
        "service": "h@b",
        "action": "create_volume",
        "resource_type": "volume",
        "resource_id": "v",
        "args": {"volume": {"id": "v"}},
        "state": "accepted",
        "owner": "h@b",
        "created_at": NOW,
    }
    values = _sql.values(OperationRecord, fields)
    seq = call(lambda s: _sql.execute(s, statement, values).scalar())
    assert isinstance(seq, int)
    again = call(lambda s: _sql.execute(s, statement, values).scalar())
    assert again is None  # the message id is taken
    update = _sql.update_by(OperationRecord, "seq", frozenset({"state"}))
    done = call(lambda s: _sql.execute(s, update, {"_key": seq, "state": "done"}))
    assert done.rowcount == 1
    none = call(lambda s: _sql.execute(s, update, {"_key": -1, "state": "done"}))
    assert none.rowcount == 0


def test_a_value_its_type_refuses_raises_a_statement_error(call: Any) -> None:
    statement = _sql.insert_new(VolumeRecord, _dialect(call), None)
    naive = {**_volume("n"), "created_at": dt.datetime(2026, 1, 1)}
    with pytest.raises(sa.exc.StatementError, match="naive"):
        call(lambda s: _sql.execute(s, statement, naive))


def test_a_failing_statement_raises_sqlalchemys_error(call: Any) -> None:
    statement = _sql.insert_new(VolumeRecord, _dialect(call), None)
    incomplete = _volume("x")
    del incomplete["host"]  # NOT NULL, without a default
    with pytest.raises(sa.exc.IntegrityError):
        call(lambda s: _sql.execute(s, statement, incomplete))


def _dialect(call: Any) -> str:
    return str(call(lambda s: s.get_bind().dialect.name))
