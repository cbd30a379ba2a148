"""The same cast delivered twice is done once.

Two ways a cast arrives again: the broker (or a publisher retrying after a
lost confirm) delivers the very same message twice, with the same
``_unique_id``; or a client sends a second ``create_volume`` (or
``create_snapshot``) for an id that already exists. Either way the journal
holds one entry and the backend sees one effect: on the file driver, the
files are as one run of each leaves them; on the fake driver, its effects
log holds each effect once.
"""

from __future__ import annotations

import pathlib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.faults.audit import Findings, GiB, check_disk
from tests.faults.effects import audit_effects
from tests.faults.load import Op
from tests.faults.raw import RawPublisher, envelope, request
from tests.faults.rig import (
    BACKEND,
    file_backend,
    journal_of,
    state_dir,
    unexpected_errors,
    wait_for,
)
from tests.faults.tally import Tally
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import Worker
from volworker_drivers.fake import effects


@pytest.fixture
def raw(make_worker: Callable[..., Worker]) -> Iterator[Callable[[Worker], Any]]:
    publishers: list[RawPublisher] = []

    def make(worker: Worker) -> RawPublisher:
        publisher = RawPublisher(worker.topic, worker.server(BACKEND))
        publishers.append(publisher)
        return publisher

    yield make
    for publisher in publishers:
        publisher.close()


def _rows(worker: Worker, request_ids: set[str]) -> list[dict[str, Any]]:
    rows = journal_of(worker).operations()
    return [r for r in rows if r["request_id"] in request_ids]


def _backend_evidence(
    driver: str, worker: Worker, tmp_path: pathlib.Path, asked: list[Op]
) -> Findings:
    """What the backend shows: one run of each request, no more."""
    found = Findings()
    if driver == "fake":
        done = {r["request_id"] for r in journal_of(worker).operations()}
        log = effects.read(str(tmp_path / "effects.jsonl"))
        return audit_effects(log, asked, done, Counter())
    pool = tmp_path / "pool"
    volume_id = asked[0].kwargs["volume"]["id"]
    size = (pool / f"volume-{volume_id}").stat().st_size
    if size != 2 * GiB:
        found.mismatched.append(f"volume {volume_id}: {size} bytes, not 2 GiB")
    found.mismatched += check_disk(journal_of(worker), pool, state_dir(worker))
    return found


@pytest.mark.time_limit(60)
@pytest.mark.parametrize("driver", ["file", "fake"])
def test_same_message_twice_and_second_create_are_done_once(
    driver: str,
    tmp_path: pathlib.Path,
    shared_broker: None,
    make_worker: Callable[..., Worker],
    client: Callable[..., VolumeAPI],
    raw: Callable[[Worker], RawPublisher],
    tally: Tally,
) -> None:
    backend = file_backend(tmp_path / "pool")
    if driver == "fake":
        backend = {
            BACKEND: {
                "volume_driver": "fake",
                "fake_effects_log": tmp_path / "effects.jsonl",
            }
        }
    worker = make_worker(backend).start().wait_ready()
    api, publisher = client(worker), raw(worker)
    server = worker.server(BACKEND)
    volume_id, snapshot_id = str(uuid.uuid4()), str(uuid.uuid4())
    volume: dict[str, Any] = {"id": volume_id, "size": 1, "host": server}
    snapshot = {"id": snapshot_id, "volume_id": volume_id}

    create = request("create_volume", {"volume": volume})
    extend = request("extend_volume", {"volume": volume, "new_size": 2})
    snap = request("create_snapshot", {"snapshot": snapshot})
    # NOTE: each copy right behind its original, then both again later.
    for message in (create, create, snap, extend, snap, extend):
        publisher.publish(envelope(message))
    request_ids = {m["_context_request_id"] for m in (create, extend, snap)}
    done = wait_for(
        lambda: [r for r in _rows(worker, request_ids) if r["state"] == "done"][2:],
        30,
        "the three operations done",
    )
    assert done
    # a late copy of the create, long after it was done
    publisher.publish(envelope(create))

    # a second create and a second snapshot, sent apart, for the same ids
    second = {"request_id": f"req-{uuid.uuid4()}"}
    api.create_volume(dict(volume, size=1), ctxt=second)
    again = {"request_id": f"req-{uuid.uuid4()}"}
    api.create_snapshot(server, snapshot, ctxt=again)
    tally.sent += 9
    tally.faults += 5
    wait_for(
        lambda: worker.log().count("already received") >= 5,
        30,
        "five duplicates recognised",
    )

    rows = _rows(worker, request_ids | {second["request_id"], again["request_id"]})
    by_message: dict[str, int] = {}
    for row in rows:
        by_message[row["message_id"]] = by_message.get(row["message_id"], 0) + 1
    assert sorted(r["action"] for r in rows) == [
        "create_snapshot",
        "create_volume",
        "extend_volume",
    ], rows
    assert all(count == 1 for count in by_message.values()), by_message
    assert all(r["state"] == "done" for r in rows), rows
    tally.duplicated += len(rows) - 3

    record = journal_of(worker).volumes()[volume_id]
    assert (record["status"], record["size"]) == ("available", 2), record
    snapshot_record = journal_of(worker).snapshots()[snapshot_id]
    assert snapshot_record["status"] == "available", snapshot_record
    asked = [
        Op(m["method"], m["args"], request_id=m["_context_request_id"])
        for m in (create, extend, snap)
    ]
    found = _backend_evidence(driver, worker, tmp_path, asked)
    tally.count(found)
    assert not found, found.report()
    assert unexpected_errors(worker) == []
    assert worker.stop() == 0
