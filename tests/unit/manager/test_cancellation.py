"""Per-volume order when work is cancelled: a stop cancels what waits, which
stays journaled; its place in line is freed, and after a restart the rest
runs in the order it was accepted."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import pathlib

from tests.unit.manager.conftest import (
    fake_driver,
    journal,
    new_volume,
    record,
    request,
    until,
)
from volworker.coordination import Coordination
from volworker.manager.core import Manager
from volworker.manager.runtime import Runtime

SLOW = 0.3


def _manager(runtime: Runtime) -> Manager:
    locks = Coordination(
        "file:///nowhere", "unit", "vw", 5, runtime.executor, per_volume=False
    )
    found = Manager(
        runtime,
        locks=locks,
        max_concurrent=2,
        journal_retention=datetime.timedelta(days=1),
    )
    found.start()
    return found


async def test_stop_cancels_waiters_and_a_restart_keeps_their_order(
    runtime: Runtime, tmp_path: pathlib.Path
) -> None:
    slow = fake_driver(tmp_path / "slow", fake_method_latency={"extend_volume": SLOW})
    runtime = dataclasses.replace(runtime, driver=slow)
    first = _manager(runtime)
    volume = new_volume()
    first.submit(request("create_volume", volume=volume))

    async def created() -> bool:
        stored = await record(runtime, "volume", volume["id"])
        return stored is not None and stored["status"] == "available"

    await until(created)
    for size in (2, 3, 4):
        first.submit(request("extend_volume", volume=volume, new_size=size))

    async def extending() -> bool:
        return any(e["state"] == "running" for e in await journal(runtime))

    await until(extending)
    assert await first.stop(timeout=10)
    # The running extend finished; the two that waited stay journaled.
    states = [(e["args"].get("new_size"), e["state"]) for e in await journal(runtime)]
    assert states == [(None, "done"), (2, "done"), (3, "accepted"), (4, "accepted")]
    assert len(first.ordering) == 0
    for _ in range(2):  # every slot is free again
        await asyncio.wait_for(first.ordering.slots.acquire(), 1)

    # A restart is a new incarnation of the worker: a new owner.
    runtime = dataclasses.replace(runtime, owner=f"{runtime.owner}/restarted")
    second = _manager(runtime)
    assert await second.recover() == 2

    async def all_done() -> bool:
        return all(e["state"] == "done" for e in await journal(runtime))

    await until(all_done)
    await second.stop(timeout=10)
    entries = await journal(runtime)
    started = [e["started_at"] for e in entries[2:]]
    assert started == sorted(started)
    stored = await record(runtime, "volume", volume["id"])
    assert stored is not None
    assert stored["size"] == 4
    assert slow.volumes[f"volume-{volume['id']}"].size == 4
