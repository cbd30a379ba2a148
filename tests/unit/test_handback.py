"""handback.call: a blocking call's outcome reaches its awaiter, and the
loop is woken once for the outcomes that came before it looked."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Iterator

import pytest

from volworker import handback


@pytest.fixture
def pool() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    executor = concurrent.futures.ThreadPoolExecutor(8)
    yield executor
    executor.shutdown(wait=True)


async def test_results_errors_and_arguments(
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    def divide(a: int, b: int = 1) -> float:
        return a / b

    assert await handback.call(pool, divide, 6, b=3) == 2
    with pytest.raises(ZeroDivisionError):
        await handback.call(pool, divide, 1, b=0)
    # The call ran on a thread of the pool, not on the loop's.
    assert await handback.call(pool, threading.get_ident) != threading.get_ident()


async def test_calls_finishing_together_wake_the_loop_once(
    pool: concurrent.futures.ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    wakeups = []
    real = loop.call_soon_threadsafe

    def counted(callback, *args):  # type: ignore[no-untyped-def]
        wakeups.append(callback)
        return real(callback, *args)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    # Eight calls held at a barrier finish while the loop is busy: their
    # outcomes wait in one list, and one wake-up settles them all.
    gate = threading.Barrier(9)

    def held(n: int) -> int:
        gate.wait(10)
        return n

    calls = [asyncio.ensure_future(handback.call(pool, held, n)) for n in range(8)]
    await asyncio.sleep(0)  # each call is submitted, and awaits
    # The loop's thread now waits here, not looking, while all eight finish.
    gate.wait(10)
    deadline = time.monotonic() + 10
    while len(handback._outcomes._pending.get(loop, [])) < 8:
        assert time.monotonic() < deadline, "the outcomes did not all arrive"
        time.sleep(0.01)
    assert await asyncio.gather(*calls) == list(range(8))
    assert len(wakeups) == 1


async def test_a_call_cancelled_before_it_starts_does_not_run(
    pool: concurrent.futures.ThreadPoolExecutor,
) -> None:
    ran = []
    one = concurrent.futures.ThreadPoolExecutor(1)
    release = threading.Event()
    try:
        blocker = asyncio.ensure_future(handback.call(one, release.wait, 10))
        queued = asyncio.ensure_future(handback.call(one, ran.append, "ran"))
        await asyncio.sleep(0.05)
        queued.cancel()
        release.set()
        assert await blocker is True
        with pytest.raises(asyncio.CancelledError):
            await queued
        # The pool ran the next thing after the cancelled call was skipped.
        await handback.call(one, lambda: None)
        assert ran == []
    finally:
        release.set()
        one.shutdown(wait=True)


async def test_a_call_the_pool_drops_at_shutdown_cancels_its_caller() -> None:
    one = concurrent.futures.ThreadPoolExecutor(1)
    release = threading.Event()
    blocker = asyncio.ensure_future(handback.call(one, release.wait, 10))
    queued = asyncio.ensure_future(handback.call(one, lambda: "never"))
    await asyncio.sleep(0.05)
    one.shutdown(wait=False, cancel_futures=True)
    release.set()
    assert await blocker is True
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(queued, 5)
