"""Per-volume FIFO lines and the concurrency cap."""

from __future__ import annotations

import asyncio

from volworker.ordering import Ordering


async def _run(ordering: Ordering, keys: set[str], log: list[str], name: str) -> None:
    ticket = ordering.enqueue(keys)
    try:
        async with ticket:
            log.append(f"start {name}")
            await asyncio.sleep(0.01)
            log.append(f"end {name}")
    finally:
        ticket.release()


async def test_one_volume_runs_in_arrival_order() -> None:
    ordering, log = Ordering(8), []
    await asyncio.gather(*(_run(ordering, {"v"}, log, str(i)) for i in range(5)))
    assert log == [f"{p} {i}" for i in range(5) for p in ("start", "end")]
    assert len(ordering) == 0


async def test_different_volumes_run_together() -> None:
    ordering, log = Ordering(8), []
    await asyncio.gather(*(_run(ordering, {f"v{i}"}, log, str(i)) for i in range(3)))
    assert log[:3] == ["start 0", "start 1", "start 2"]


async def test_cap_limits_concurrency() -> None:
    ordering, running, peak = Ordering(2), 0, 0

    async def op(key: str) -> None:
        nonlocal running, peak
        ticket = ordering.enqueue({key})
        async with ticket:
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.gather(*(op(f"v{i}") for i in range(10)))
    assert peak == 2


async def test_multi_volume_operation_waits_for_both_lines() -> None:
    ordering, log = Ordering(8), []
    # a clone of A into B must wait for A's earlier work and hold B's later
    await asyncio.gather(
        _run(ordering, {"A"}, log, "a1"),
        _run(ordering, {"A", "B"}, log, "clone"),
        _run(ordering, {"B"}, log, "b1"),
    )
    assert log.index("end a1") < log.index("start clone")
    assert log.index("end clone") < log.index("start b1")


async def test_a_released_ticket_that_never_ran_unblocks_the_line() -> None:
    ordering, log = Ordering(8), []
    first = ordering.enqueue({"v"})
    waiting = ordering.enqueue({"v"})
    waiting.release()  # e.g. a duplicate found after it was queued
    third = asyncio.ensure_future(_run(ordering, {"v"}, log, "third"))
    await asyncio.sleep(0.02)
    assert log == []
    first.release()
    await third
    assert log == ["start third", "end third"]


async def test_cancelled_waiter_leaves_the_line() -> None:
    ordering, log = Ordering(8), []
    first = ordering.enqueue({"v"})
    stuck = asyncio.ensure_future(_run(ordering, {"v"}, log, "stuck"))
    await asyncio.sleep(0)
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
    first.release()
    await _run(ordering, {"v"}, log, "next")
    assert log == ["start next", "end next"]
    assert len(ordering) == 0
