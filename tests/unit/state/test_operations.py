"""The journal's table: insert, states, unfinished work, purge."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from tests.unit.state.conftest import new_id
from volworker.state import operations
from volworker.state.models import OperationRecord

OWNER = "host1@lvm/aaaa"


def _operation(**fields: Any) -> dict[str, Any]:
    return {
        "service": "host1@lvm",
        "action": "create_volume",
        "resource_type": "volume",
        "resource_id": new_id(),
        "args": {"volume": {"size": 1}},
        "owner": OWNER,
    } | fields


def _set(call: Any, seq: int, state: str, **kwargs: Any) -> None:
    kwargs.setdefault("owner", OWNER)
    call(operations.set_state, seq, state, **kwargs)


def _insert(call: Any, **fields: Any) -> int:
    seq = call(operations.insert, **_operation(**fields))
    assert isinstance(seq, int)
    return seq


def _row(call: Any, seq: int) -> dict[str, Any] | None:
    def work(session: Any) -> dict[str, Any] | None:
        found = session.execute(
            sa.select(OperationRecord).where(OperationRecord.seq == seq)
        ).scalar_one_or_none()
        return None if found is None else found.to_dict()

    return call(work)


def test_insert_returns_increasing_seqs(call: Any) -> None:
    seqs = [_insert(call) for _ in range(3)]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 3
    record = _row(call, seqs[0])
    assert record is not None
    assert (record["state"], record["args"]) == ("accepted", {"volume": {"size": 1}})
    assert (record["started_at"], record["finished_at"]) == (None, None)


def test_a_message_id_is_journaled_once(call: Any) -> None:
    first = _insert(call, message_id="m1", request_id="req-1")
    assert call(operations.insert, **_operation(message_id="m1")) is None
    rows = call(lambda s: s.scalars(sa.select(OperationRecord.seq)).all())
    assert rows == [first]
    # Operations without a message id never collide.
    _insert(call)
    _insert(call)


def test_states_stamp_their_times(call: Any) -> None:
    seq = _insert(call)
    _set(call, seq, "running")
    running = _row(call, seq)
    assert running is not None
    assert running["started_at"] is not None
    assert running["finished_at"] is None
    _set(call, seq, "failed", error="boom")
    failed = _row(call, seq)
    assert failed is not None
    assert failed["error"] == "boom"
    assert failed["started_at"] == running["started_at"]
    assert dt.datetime.fromisoformat(
        failed["finished_at"]
    ) >= dt.datetime.fromisoformat(running["started_at"])


def test_a_start_that_was_not_recorded_is_stamped_at_the_end(call: Any) -> None:
    seq = _insert(call)
    began = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    _set(call, seq, "done", started_at=began)
    record = _row(call, seq)
    assert record is not None
    assert dt.datetime.fromisoformat(record["started_at"]) == began
    assert record["finished_at"] is not None


def test_unknown_states_are_refused(call: Any) -> None:
    seq = _insert(call)
    with pytest.raises(ValueError, match="state"):
        _set(call, seq, "exploded")
    with pytest.raises(ValueError, match="state"):
        call(operations.insert, **_operation(state="exploded"))


def test_unfinished_operations_in_journal_order(call: Any) -> None:
    seqs = [_insert(call) for _ in range(4)]
    _insert(call, service="other@lvm")
    _set(call, seqs[0], "running")
    _set(call, seqs[1], "done")
    _set(call, seqs[2], "rolled_back")
    unfinished = call(operations.unfinished, "host1@lvm")
    assert [(op["seq"], op["state"]) for op in unfinished] == [
        (seqs[0], "running"),
        (seqs[3], "accepted"),
    ]


def test_purge_removes_only_old_finished_operations(call: Any) -> None:
    done, skipped, running = _insert(call), _insert(call), _insert(call)
    foreign = _insert(call, service="other@lvm")
    for seq in (done, skipped, foreign):
        _set(call, seq, "done" if seq != skipped else "skipped")
    _set(call, running, "running")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    assert call(operations.purge, "host1@lvm", past) == 0
    future = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert call(operations.purge, "host1@lvm", future) == 2
    assert _row(call, done) is None
    assert _row(call, skipped) is None
    assert (_row(call, running) or {}).get("state") == "running"
    assert (_row(call, foreign) or {}).get("state") == "done"


def test_the_volumes_touched_are_journaled_and_purged_with_it(call: Any) -> None:
    first, second = new_id(), new_id()
    seq = call(operations.insert, volumes=[first, second, first], **_operation())
    assert call(operations.earlier_unfinished, "host1@lvm", seq + 1, [second]) == {seq}
    _set(call, seq, "done")
    future = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert call(operations.purge, "host1@lvm", future) == 1
    count = sa.text("SELECT count(*) FROM operation_volumes")
    assert call(lambda s: s.scalar(count)) == 0


def test_earlier_unfinished_is_what_must_run_first(call: Any) -> None:
    volume, other = new_id(), new_id()
    done = call(operations.insert, volumes=[volume], **_operation())
    _set(call, done, "done")
    before = call(operations.insert, volumes=[volume], **_operation(owner="h2@lvm/b"))
    elsewhere = call(operations.insert, volumes=[other], **_operation())
    foreign = call(
        operations.insert, volumes=[volume], **_operation(service="other@lvm")
    )
    mine = call(operations.insert, volumes=[volume, other], **_operation())
    later = call(operations.insert, volumes=[volume], **_operation())
    assert call(operations.earlier_unfinished, "host1@lvm", mine, [volume, other]) == {
        before,
        elsewhere,
    }
    assert call(operations.earlier_unfinished, "host1@lvm", mine, [volume]) == {before}
    assert foreign not in call(
        operations.earlier_unfinished, "host1@lvm", later, [volume]
    )


def test_a_taken_over_operation_refuses_its_old_owner(call: Any) -> None:
    seq = _insert(call)
    assert [
        e["seq"] for e in call(_reown, "h2@lvm/new", operations.owned_by(OWNER))
    ] == [seq]
    with pytest.raises(operations.TakenOver):
        _set(call, seq, "done")
    _set(call, seq, "done", owner="h2@lvm/new")
    assert (_row(call, seq) or {}).get("state") == "done"


def _reown(session: Any, owner: str, previous: Any) -> list[dict[str, Any]]:
    return operations.reown(session, "host1@lvm", owner, previous)


def test_reown_takes_earlier_incarnations_and_only_unfinished_work(
    call: Any,
) -> None:
    volume = new_id()
    older = call(operations.insert, volumes=[volume], **_operation())
    legacy = _insert(call, owner="host1@lvm")
    finished = _insert(call)
    _set(call, finished, "done")
    peer = _insert(call, owner="host2@lvm/cccc")
    lookalike = _insert(call, owner="host1@lvm2/dddd")
    me = "host1@lvm/bbbb"
    taken = call(_reown, me, operations.incarnations_of("host1@lvm"))
    assert [e["seq"] for e in taken] == [older, legacy]
    assert taken[0]["volumes"] == [volume]
    assert {e["owner"] for e in taken} == {me}
    assert call(_reown, me, operations.incarnations_of("host1@lvm")) == []
    assert call(operations.owners, "host1@lvm") == {
        me: 2,
        "host2@lvm/cccc": 1,
        "host1@lvm2/dddd": 1,
    }
    assert {e["seq"] for e in call(_reown, me, operations.incarnations_of(None))} == {
        peer,
        lookalike,
    }
