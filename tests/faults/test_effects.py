"""The done-twice detector, shown to detect, and the record it reads.

The kill rounds against the fake driver can only prove that nothing was
done twice if the audit would say so when something was: here it is fed
effects made up for the purpose. And the fake backend's effects log must
hold every effect and give the objects back to the next process.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import uuid
from collections import Counter
from typing import Any

from tests.contract.harness import make_config
from tests.faults.effects import audit_effects
from tests.faults.load import Op
from volworker.context import RequestContext
from volworker.objects import Snapshot, Volume
from volworker_drivers.fake import effects
from volworker_drivers.fake.driver import FakeDriver


def _volume(volume_id: str, size: int = 1, **fields: Any) -> dict[str, Any]:
    return {"id": volume_id, "size": size, "host": "h@b1", **fields}


def _create(volume_id: str) -> Op:
    return Op("create_volume", {"volume": _volume(volume_id)})


def _effect(method: str, **fields: Any) -> dict[str, Any]:
    return {"method": method, "pid": 1, "at": 0.0, **fields}


def test_an_operation_done_twice_is_reported() -> None:
    vid = str(uuid.uuid4())
    op = _create(vid)
    done_twice = [_effect("create_volume", volume=vid, pool="p", size=1)] * 2
    found = audit_effects(done_twice, [op], {op.request_id}, Counter())
    assert len(found.duplicated) == 1, found.report()
    assert vid in found.duplicated[0] and op.request_id in found.duplicated[0]


def test_a_redo_after_a_kill_that_found_it_unfinished_is_not() -> None:
    vid = str(uuid.uuid4())
    op = Op("extend_volume", {"volume": _volume(vid), "new_size": 3})
    twice = [_effect("extend_volume", volume=vid, size=3)] * 2
    assert not audit_effects(twice, [op], {op.request_id}, Counter([op.request_id]))
    # a third time is one more than the one kill allows
    found = audit_effects(twice * 2, [op], {op.request_id}, Counter([op.request_id]))
    assert len(found.duplicated) == 1, found.report()


def test_a_cast_delivered_twice_and_done_twice_is_reported() -> None:
    """Two requests for one snapshot (the same cast, or a second one for the
    same id): the journal holds one, the backend shows two effects."""
    sid, vid = str(uuid.uuid4()), str(uuid.uuid4())
    op = Op("create_snapshot", {"snapshot": {"id": sid, "volume_id": vid}})
    twice = [_effect("create_snapshot", snapshot=sid, volume=vid, pool="p", size=1)]
    found = audit_effects(twice * 2, [op], {op.request_id}, Counter())
    assert len(found.duplicated) == 1, found.report()


def test_done_without_an_effect_and_an_effect_unasked_are_reported() -> None:
    asked, unasked = str(uuid.uuid4()), str(uuid.uuid4())
    op = Op("delete_volume", {"volume": _volume(asked)})
    stray = [_effect("delete_volume", volume=unasked)]
    found = audit_effects(stray, [op], {op.request_id}, Counter())
    assert len(found.mismatched) == 2, found.report()
    assert not found.duplicated


def test_every_kind_of_request_meets_its_effect() -> None:
    vid, sid, clone = (str(uuid.uuid4()) for _ in range(3))
    ops = [
        _create(vid),
        Op("extend_volume", {"volume": _volume(vid), "new_size": 2}),
        Op("create_snapshot", {"snapshot": {"id": sid, "volume_id": vid}}),
        Op("create_volume", {"volume": _volume(clone, snapshot_id=sid)}),
        Op("revert_to_snapshot", {"volume": _volume(vid), "snapshot": {"id": sid}}),
        Op("delete_volume", {"volume": _volume(clone)}),
        Op("delete_snapshot", {"snapshot": {"id": sid, "volume_id": vid}}),
    ]
    done = [
        _effect("create_volume", volume=vid, pool="p", size=1),
        _effect("extend_volume", volume=vid, size=2),
        _effect("create_snapshot", snapshot=sid, volume=vid, pool="p", size=2),
        _effect("create_volume_from_snapshot", volume=clone, pool="p", size=2),
        _effect("revert_to_snapshot", volume=vid, snapshot=sid),
        _effect("delete_volume", volume=clone),
        _effect("delete_snapshot", snapshot=sid),
        _effect("initialize_connection", volume=vid, connector="c1"),
    ]
    ids = {op.request_id for op in ops}
    assert not audit_effects(done, ops, ids, Counter())
    for dropped in range(len(ops)):
        found = audit_effects(done[:dropped] + done[dropped + 1 :], ops, ids, Counter())
        assert found.mismatched, f"{ops[dropped].method} done without its effect"


def _driver(log: pathlib.Path, tmp_path: pathlib.Path) -> FakeDriver:
    config = make_config(tmp_path, "fake1", FakeDriver, fake_effects_log=str(log))
    driver = FakeDriver(config)
    driver.do_setup(RequestContext.admin())
    return driver


def test_the_fake_backend_outlives_its_process(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "effects.jsonl"
    first = _driver(log, tmp_path)
    volume = Volume(id=str(uuid.uuid4()), size=1, host="h@fake1")
    first.create_volume(volume)
    first.extend_volume(volume, 3)
    snap = Snapshot(id=str(uuid.uuid4()), volume_id=volume.id, volume=volume)
    first.create_snapshot(snap)
    clone = Volume(id=str(uuid.uuid4()), size=3, host="h@fake1")
    first.create_volume_from_snapshot(clone, snap)
    first.plant("adopted", 2)
    first.manage_existing(
        Volume(id=str(uuid.uuid4()), size=2, host="h@fake1"), {"source-name": "adopted"}
    )
    first.unmanage(clone)
    first.initialize_connection(volume, {"host": "c1"})

    second = _driver(log, tmp_path)
    assert second.volumes == first.volumes
    assert second.snapshots == first.snapshots
    assert second.unmanaged == first.unmanaged
    assert second.volumes[volume.name].size == 3
    assert second.exports == {}, "exports end with the process"
    methods = [e["method"] for e in effects.read(str(log))]
    assert methods.count("initialize_connection") == 1


def test_a_line_cut_short_is_not_an_effect(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "effects.jsonl"
    log.write_text('{"method": "delete_volume", "volume": "x"}\n{"method": "crea')
    assert effects.read(str(log)) == [{"method": "delete_volume", "volume": "x"}]


def test_an_effect_survives_kill_9_of_its_writer(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "effects.jsonl"
    script = (
        "import os, signal\n"
        "from volworker_drivers.fake.effects import EffectsLog\n"
        f"EffectsLog({str(log)!r}).record('delete_volume', {{'volume': 'v1'}})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    assert done.returncode == -signal.SIGKILL
    [entry] = effects.read(str(log))
    assert (entry["method"], entry["volume"]) == ("delete_volume", "v1")
    assert entry["pid"] != os.getpid()
