"""Recovery at start: each unfinished operation is redone, undone or closed,
in journal order, and the work is really done (or undone) on the backend."""

from __future__ import annotations

import dataclasses
import functools

import pytest

from tests.unit.manager.conftest import (
    EARLIER,
    SERVICE,
    journal,
    journaled,
    new_volume,
    record,
    request,
    running_manager,
    sent,
    stored_volume,
    until,
)
from volworker.context import RequestContext
from volworker.manager import recovery
from volworker.manager.actions import commands
from volworker.manager.core import Manager
from volworker.manager.recovery import Fate
from volworker.manager.runtime import Runtime
from volworker.metrics import Recorder
from volworker.state import records
from volworker_drivers.fake.driver import FakeDriver

EXPECTED = {
    # (action, state left by the crash): what recovery does
    ("create_volume", "accepted"): Fate.REDO,
    ("create_volume", "running"): Fate.REDO,
    ("extend_volume", "running"): Fate.REDO,
    ("delete_volume", "running"): Fate.REDO,
    ("create_snapshot", "running"): Fate.REDO,
    ("manage_existing", "accepted"): Fate.REDO,
    ("manage_existing", "running"): Fate.UNDO,
    ("manage_existing_snapshot", "running"): Fate.UNDO,
    ("initialize_connection", "accepted"): Fate.CLOSE,
    ("initialize_connection", "running"): Fate.UNDO,
    ("terminate_connection", "accepted"): Fate.CLOSE,
    ("terminate_connection", "running"): Fate.REDO,
}


@pytest.mark.parametrize(("action", "state"), list(EXPECTED))
def test_fate_of_each_action(action: str, state: str) -> None:
    assert recovery.fate(state, commands()[action]) is EXPECTED[(action, state)]


def test_every_command_has_a_fate_in_both_states() -> None:
    for command in commands().values():
        for state in ("accepted", "running"):
            assert isinstance(recovery.fate(state, command), Fate)


async def test_unfinished_work_in_order_and_abandoned_calls_closed(
    runtime: Runtime,
) -> None:
    volume = new_volume()
    create = request("create_volume", volume=volume)
    attach = request("initialize_connection", volume=volume, connector={"host": "c1"})
    extend = request("extend_volume", volume=volume, new_size=2)
    seqs = [
        await journaled(runtime, create, "running", EARLIER),
        await journaled(runtime, attach, "accepted", EARLIER),
        await journaled(runtime, extend, "accepted", EARLIER),
    ]
    resumed = await recovery.unfinished(runtime, None)
    assert [(r.seq, r.fate) for r in resumed] == [
        (seqs[0], Fate.REDO),
        (seqs[2], Fate.REDO),
    ]
    assert resumed[0].request.context.request_id == create.context.request_id
    entries = {e["seq"]: e for e in await journal(runtime)}
    assert entries[seqs[1]]["state"] == "rolled_back"
    assert "abandoned" in entries[seqs[1]]["error"]


async def test_an_interrupted_create_is_redone_to_available(
    runtime: Runtime, manager: Manager, driver: FakeDriver
) -> None:
    volume = new_volume(size=2)
    create = request("create_volume", volume=volume)
    seq = await journaled(runtime, create, "running", EARLIER)
    assert await manager.recover() == 1
    await until(functools.partial(_in_state, runtime, seq, "done"))
    stored = await record(runtime, "volume", volume["id"])
    assert stored is not None
    assert (stored["status"], stored["size"]) == ("available", 2)
    assert f"volume-{volume['id']}" in driver.volumes


async def test_an_interrupted_attach_is_undone(
    runtime: Runtime, manager: Manager, driver: FakeDriver
) -> None:
    volume = await stored_volume(runtime, driver=driver)
    obj = (
        await runtime.db(
            functools.partial(records.load, kind="volume", resource_id=volume["id"])
        )
    ).to_volume()
    connector = {"host": "c1"}
    # The crash came after the driver exported the volume, before the reply.
    driver.create_export(RequestContext(), obj, connector)
    driver.initialize_connection(obj, connector)
    attach = request("initialize_connection", volume=volume, connector=connector)
    seq = await journaled(runtime, attach, "running", EARLIER)
    await manager.recover()
    await until(functools.partial(_in_state, runtime, seq, "rolled_back"))
    stored = await record(runtime, "volume", volume["id"])
    assert stored is not None
    assert stored["status"] == "available"
    assert volume["id"] not in driver.exports
    assert sent(runtime).events(volume["id"])[-1] == "volume.attach.error"


async def _in_state(runtime: Runtime, seq: int, state: str) -> bool:
    return any(e["seq"] == seq and e["state"] == state for e in await journal(runtime))


class _Counted(Recorder):
    def __init__(self) -> None:
        self.fates: list[str] = []

    def recovered(self, fate: str) -> None:
        self.fates.append(fate)


@pytest.mark.parametrize("taken_over", [False, True], ids=["restart", "takeover"])
async def test_recovered_operations_are_counted(
    runtime: Runtime, driver: FakeDriver, taken_over: bool
) -> None:
    """A start and a takeover of a dead member's work both count what they
    found unfinished, by fate."""
    counted = _Counted()
    runtime = dataclasses.replace(runtime, metrics=counted)
    volume = await stored_volume(runtime, driver=driver)
    owner = f"{SERVICE}/dead" if taken_over else EARLIER
    extend = request("extend_volume", volume=volume, new_size=2)
    await journaled(runtime, extend, "running", owner)
    attach = request("initialize_connection", volume=volume, connector={"host": "c"})
    await journaled(runtime, attach, "running", owner)
    async with running_manager(runtime) as manager:
        if taken_over:
            await manager.take_over(owner)
        else:
            await manager.recover()
        assert sorted(counted.fates) == ["redo", "undo"]
