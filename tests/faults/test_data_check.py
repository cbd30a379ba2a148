"""The read-back of the kill rounds, shown to detect.

A worker that marked a revert done without reverting, or made an empty
clone, must fail the suite. Here the expectations are given such a story
(a revert the worker never got; a clone it got as a blank create) and the
read-back must report both; told the truth, it must report nothing.
"""

from __future__ import annotations

import pathlib
import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults.data import DataCheck
from tests.faults.load import Op, Planner, VolumeState
from tests.faults.rig import BACKEND, file_backend, journal_of, wait_for
from tests.faults.tally import Tally
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import Worker


def _send(api: VolumeAPI, worker: Worker, op: Op) -> None:
    cctxt = api.client.prepare(server=worker.server(BACKEND))
    cctxt.cast({"request_id": op.request_id}, op.method, **op.kwargs)
    wait_for(
        lambda: any(
            r["request_id"] == op.request_id and r["state"] == "done"
            for r in journal_of(worker).operations()
        ),
        30,
        f"{op.method} done",
    )


@pytest.mark.time_limit(90)
def test_a_revert_not_done_and_an_empty_clone_are_reported(
    tmp_path: pathlib.Path,
    shared_broker: None,
    make_worker: Callable[..., Worker],
    client: Callable[..., VolumeAPI],
    tally: Tally,
) -> None:
    pool = tmp_path / "pool"
    worker = make_worker(file_backend(pool)).start().wait_ready()
    api = client(worker)
    planner = Planner(random.Random(0), worker.server(BACKEND))
    check = DataCheck(api, planner, pool, random.Random(0))
    model, contents = planner.model, check.contents

    def create(volume_id: str, **source: Any) -> Op:
        model.volumes[volume_id] = VolumeState(1)
        wire = planner.volume(volume_id, **source)
        return Op("create_volume", {"volume": wire})

    vid, sid, clone = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    _send(api, worker, create(vid))
    check.write()
    model.snapshots[sid] = (vid, 1)
    snap = Op("create_snapshot", {"snapshot": {"id": sid, "volume_id": vid}})
    _send(api, worker, snap)
    contents.follow([snap])
    check.write()  # the volume now differs from its snapshot

    revert = Op(
        "revert_to_snapshot",
        {"volume": planner.volume(vid), "snapshot": planner.snapshot(sid)},
    )
    as_clone = create(clone, source_volid=vid)
    as_blank = Op("create_volume", {"volume": planner.volume(clone)})
    contents.follow([revert, as_clone])  # what the worker is said to have done
    _send(api, worker, as_blank)  # what it was actually asked
    checked, problems = check.read_back()
    assert checked == 2, checked
    reported = "\n".join(problems)
    assert f"volume {vid} (reverted)" in reported, reported
    assert f"volume {clone} (clone)" in reported, reported

    _send(api, worker, revert)
    _send(api, worker, Op("delete_volume", {"volume": planner.volume(clone)}))
    _send(api, worker, as_clone)
    contents.follow([revert, as_clone])
    checked, problems = check.read_back()
    assert (checked, problems) == (2, []), problems
    tally.sent += 6 + check.calls
    tally.read_back += 4
    assert worker.stop() == 0
