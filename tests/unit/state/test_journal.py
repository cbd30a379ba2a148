"""The operation journal."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from tests.unit.state.conftest import new_id
from volworker.state import api


def _operation(**fields: Any) -> dict[str, Any]:
    return {
        "service": "host1@lvm",
        "action": "create_volume",
        "resource_type": "volume",
        "resource_id": new_id(),
        "args": {"volume": {"size": 1}},
        "owner": "host1",
    } | fields


def test_add_operation_returns_increasing_seqs(call: Any) -> None:
    seqs = [call(api.add_operation, **_operation()) for _ in range(3)]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 3
    record = call(api.get_operation, seqs[0])
    assert record["state"] == "accepted"
    assert record["args"] == {"volume": {"size": 1}}
    assert record["started_at"] is None
    assert record["finished_at"] is None


def test_message_id_is_unique(call: Any) -> None:
    seq = call(api.add_operation, **_operation(message_id="m1", request_id="req-1"))
    with pytest.raises(sa.exc.IntegrityError):
        call(api.add_operation, **_operation(message_id="m1"))
    found = call(api.find_operation_by_message, "m1")
    assert (found["seq"], found["request_id"]) == (seq, "req-1")
    assert call(api.find_operation_by_message, "m2") is None
    # NOTE: operations without a message id do not collide.
    call(api.add_operation, **_operation())
    call(api.add_operation, **_operation())


def test_states_stamp_their_times(call: Any) -> None:
    seq = call(api.add_operation, **_operation())
    running = call(api.set_operation_state, seq, "running")
    assert running["started_at"] is not None
    assert running["finished_at"] is None
    failed = call(api.set_operation_state, seq, "failed", error="boom")
    assert failed["error"] == "boom"
    assert failed["started_at"] == running["started_at"]
    assert dt.datetime.fromisoformat(
        failed["finished_at"]
    ) >= dt.datetime.fromisoformat(running["started_at"])
    assert call(api.get_operation, seq) == failed


def test_bad_states_and_seqs_are_refused(call: Any) -> None:
    seq = call(api.add_operation, **_operation())
    with pytest.raises(ValueError, match="state"):
        call(api.set_operation_state, seq, "exploded")
    with pytest.raises(LookupError):
        call(api.set_operation_state, seq + 1000, "done")
    with pytest.raises(ValueError, match="resource_type"):
        call(api.add_operation, **_operation(resource_type="backup"))


def test_unfinished_operations_in_journal_order(call: Any) -> None:
    seqs = [call(api.add_operation, **_operation()) for _ in range(4)]
    call(api.add_operation, **_operation(service="other@lvm"))
    call(api.set_operation_state, seqs[0], "running")
    call(api.set_operation_state, seqs[1], "done")
    call(api.set_operation_state, seqs[2], "rolled_back")
    unfinished = call(api.unfinished_operations, "host1@lvm")
    assert [(op["seq"], op["state"]) for op in unfinished] == [
        (seqs[0], "running"),
        (seqs[3], "accepted"),
    ]


def test_purge_removes_only_old_finished_operations(call: Any) -> None:
    done = call(api.add_operation, **_operation())
    skipped = call(api.add_operation, **_operation())
    running = call(api.add_operation, **_operation())
    foreign = call(api.add_operation, **_operation(service="other@lvm"))
    for seq in (done, skipped, foreign):
        call(api.set_operation_state, seq, "done" if seq != skipped else "skipped")
    call(api.set_operation_state, running, "running")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    assert call(api.purge_operations, "host1@lvm", past) == 0
    future = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert call(api.purge_operations, "host1@lvm", future) == 2
    assert call(api.get_operation, done) is None
    assert call(api.get_operation, skipped) is None
    assert call(api.get_operation, running)["state"] == "running"
    assert call(api.get_operation, foreign)["state"] == "done"
