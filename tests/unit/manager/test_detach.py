"""A detach leaves ``available`` only a volume that was ``in-use``: one in
an error status keeps it (an online extend that failed must not look like a
healthy volume once its client lets go)."""

from __future__ import annotations

import functools

import pytest

from tests.unit.manager.conftest import (
    journaled,
    operation,
    record,
    request,
    stored_volume,
)
from volworker.manager import connections
from volworker.manager.runtime import Runtime
from volworker.state import records
from volworker_drivers.fake.driver import FakeDriver


async def _attached(runtime: Runtime, driver: FakeDriver, host: str) -> dict:
    volume = await stored_volume(runtime, driver=driver)
    attach = request("initialize_connection", volume=volume, connector={"host": host})
    await connections.initialize_connection(
        operation(runtime, attach, await journaled(runtime, attach))
    )
    return volume


async def _detach(runtime: Runtime, volume: dict, host: str) -> str:
    req = request(
        "terminate_connection", volume=volume, connector={"host": host}, force=False
    )
    await connections.terminate_connection(
        operation(runtime, req, await journaled(runtime, req))
    )
    stored = await record(runtime, "volume", volume["id"])
    assert stored is not None
    return str(stored["status"])


@pytest.mark.parametrize(
    ("status", "left"),
    [("in-use", "available"), ("error_extending", "error_extending")],
)
async def test_the_last_detach(
    runtime: Runtime, driver: FakeDriver, status: str, left: str
) -> None:
    volume = await _attached(runtime, driver, "c1")
    assert (await record(runtime, "volume", volume["id"]) or {})["status"] == "in-use"
    await runtime.db(
        functools.partial(
            records.update, kind="volume", resource_id=volume["id"], status=status
        )
    )
    assert await _detach(runtime, volume, "c1") == left
    assert volume["id"] not in driver.exports
