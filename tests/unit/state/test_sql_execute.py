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


def test_a_value_the_statement_holds_is_bound_as_sqlalchemy_binds_it(
    call: Any,
) -> None:
    """A literal in the statement (here the state it updates from) and a
    parameter named by the caller, in one statement."""
    t = _sql.table(VolumeRecord)
    statement = (
        sa.update(t)
        .where(t.c.status == "creating", t.c.id == sa.bindparam("_key"))
        .values(status=sa.bindparam("status"))
    )
    insert = _sql.insert_new(VolumeRecord, _dialect(call), None)
    call(lambda s: _sql.execute(s, insert, _volume("h")))
    params = {"_key": "h", "status": "available"}
    assert call(lambda s: _sql.execute(s, statement, params)).rowcount == 1
    assert call(lambda s: _sql.execute(s, statement, params)).rowcount == 0
    if _dialect(call) == "sqlite":
        assert _sql._prepared[(statement, frozenset(params))] is not None


def test_a_parameter_left_out_is_sqlalchemys_error(call: Any) -> None:
    update = _sql.update_by(VolumeRecord, "id", frozenset({"status"}))
    with pytest.raises(sa.exc.StatementError, match="_key"):
        call(lambda s: _sql.execute(s, update, {"status": "available"}))


@pytest.mark.parametrize(
    "value",
    [
        NOW,
        WHOLE_SECOND,
        dt.datetime(5, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
        dt.datetime(
            2026,
            6,
            1,
            1,
            2,
            3,
            999999,
            tzinfo=dt.timezone(-dt.timedelta(hours=9, minutes=30)),
        ),
        None,
    ],
)
def test_a_timestamp_is_stored_as_sqlalchemys_datetime_stores_it(
    value: dt.datetime | None,
) -> None:
    """UTCDateTime's one-step SQLite text is the text SQLAlchemy's own
    chain (to UTC, then DATETIME's format) gives."""
    from sqlalchemy.dialects import sqlite

    from volworker.state.models import UTCDateTime

    dialect = sqlite.dialect()
    column = UTCDateTime()
    native = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    utc = column.process_bind_param(value, dialect)
    fused = column.dialect_impl(dialect).bind_processor(dialect)
    assert fused(value) == native(utc)


def test_a_detached_row_reads_what_it_was_given_and_none_for_the_rest() -> None:
    row = _sql.detached(VolumeRecord, {"id": "r", "status": "creating", "size": 2})
    assert (row.id, row.status, row.size, row.error) == ("r", "creating", 2, None)
    row.status = "available"
    assert row.status == "available"
    assert isinstance(row, VolumeRecord)
