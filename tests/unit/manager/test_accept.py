"""Duplicates at accept: a message journaled once, a create's id taken once.

The journal's unique message id and the records' primary keys decide, in the
same transaction as the insert, so a redelivered message (or the same cast
consumed by two members of a cluster) runs once.
"""

from __future__ import annotations

import functools

from tests.unit.manager.conftest import (
    journal,
    new_volume,
    record,
    request,
    until,
)
from volworker.manager import transitions
from volworker.manager.core import Manager
from volworker.manager.request import Request
from volworker.manager.runtime import Runtime
from volworker_drivers.fake.driver import FakeDriver


async def _accept(runtime: Runtime, req: Request) -> transitions.Accepted | None:
    kind = "snapshot" if "snapshot" in req.args else "volume"
    return await runtime.db(
        functools.partial(
            transitions.accept,
            service=runtime.service,
            owner=runtime.owner,
            request=req,
            kind=kind,
            resource_id=req.args[kind]["id"],
            creates=req.action.startswith("create"),
        )
    )


async def test_a_message_is_journaled_once(runtime: Runtime) -> None:
    volume = new_volume()
    extend = request("extend_volume", volume=volume, new_size=2)
    first = await _accept(runtime, extend)
    assert first is not None
    assert await _accept(runtime, extend) is None
    assert [e["seq"] for e in await journal(runtime)] == [first.seq]


async def test_a_create_whose_id_is_taken_is_not_journaled(runtime: Runtime) -> None:
    volume = new_volume(size=1)
    assert await _accept(runtime, request("create_volume", volume=volume)) is not None
    again = request("create_volume", volume={**volume, "size": 5})
    assert await _accept(runtime, again) is None
    stored = await record(runtime, "volume", volume["id"])
    assert stored is not None
    assert stored["size"] == 1
    assert len(await journal(runtime)) == 1


async def test_a_redelivered_create_leaves_no_second_record(runtime: Runtime) -> None:
    first = request("create_volume", volume=new_volume())
    assert await _accept(runtime, first) is not None
    # The same message again, naming another volume: its record must not stay.
    other = new_volume()
    same_message = Request(
        "create_volume", {"volume": other}, message_id=first.message_id
    )
    assert await _accept(runtime, same_message) is None
    assert await record(runtime, "volume", other["id"]) is None


async def test_the_manager_runs_a_redelivered_cast_once(
    runtime: Runtime, manager: Manager, driver: FakeDriver
) -> None:
    volume = new_volume()
    acks: list[str] = []
    for copy in ("first", "redelivered"):
        req = request("create_volume", volume=volume)
        req.message_id = "the-same-message"
        req.acknowledge = functools.partial(acks.append, copy)
        manager.submit(req)

    async def settled() -> bool:
        stored = await record(runtime, "volume", volume["id"])
        return len(acks) == 2 and stored is not None and stored["status"] == "available"

    await until(settled)
    assert sorted(acks) == ["first", "redelivered"]
    assert driver.calls.count("create_volume") == 1
    assert [e["state"] for e in await journal(runtime)] == ["done"]
