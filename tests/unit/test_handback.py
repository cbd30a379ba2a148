"""handback: a blocking call's outcome reaches its awaiter, and the loop is
woken once for the outcomes and calls that came before it looked."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from volworker import handback


@pytest.fixture
def pool() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    executor = concurrent.futures.ThreadPoolExecutor(8)
    yield executor
    executor.shutdown(wait=True)


@pytest.fixture
async def wakeups(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What the running loop is woken for from other threads."""
    loop = asyncio.get_running_loop()
    made: list[Any] = []
    real = loop.call_soon_threadsafe

    def counted(callback, *args):  # type: ignore[no-untyped-def]
        made.append(callback)
        return real(callback, *args)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    return made


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
    pool: concurrent.futures.ThreadPoolExecutor, wakeups: list[Any]
) -> None:
    loop = asyncio.get_running_loop()
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
    while _waiting(loop) < 8:
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


def _waiting(loop: asyncio.AbstractEventLoop) -> int:
    """Outcomes handed back to ``loop`` that it has not taken yet."""
    due = handback._outcomes._pending.get(loop)
    return 0 if due is None else len(due.outcomes)


async def test_calls_and_outcomes_from_other_threads_share_one_wake_up(
    wakeups: list[Any],
) -> None:
    loop = asyncio.get_running_loop()
    done = threading.Event()
    seen: list[str] = []

    def hand_from_threads() -> None:
        # As the store's thread and the RPC thread do, while the loop is
        # busy: an outcome, then calls from another thread.
        handback.hand_back([(future, True, "stored")])
        other = threading.Thread(
            target=lambda: [
                handback.soon(loop, lambda n=n: seen.append(f"call {n}"))
                for n in range(3)
            ]
        )
        other.start()
        other.join()
        done.set()

    future: asyncio.Future[str] = loop.create_future()
    future.add_done_callback(lambda f: seen.append(f.result()))
    thread = threading.Thread(target=hand_from_threads)
    thread.start()
    assert done.wait(10)  # the loop did not look meanwhile
    thread.join()
    assert await future == "stored"
    for _ in range(5):
        await asyncio.sleep(0)
    assert seen == ["stored", "call 0", "call 1", "call 2"]
    assert len(wakeups) == 1


async def test_a_call_that_fails_leaves_the_others_to_run() -> None:
    loop = asyncio.get_running_loop()
    errors: list[BaseException] = []
    loop.set_exception_handler(lambda _, context: errors.append(context["exception"]))
    seen: list[int] = []

    def fails() -> None:
        raise ValueError("broken")

    handback.soon(loop, lambda: seen.append(1))
    handback.soon(loop, fails)
    handback.soon(loop, lambda: seen.append(2))
    for _ in range(5):
        await asyncio.sleep(0)
    assert seen == [1, 2]
    assert [str(e) for e in errors] == ["broken"]


def test_soon_on_a_closed_loop_is_dropped() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    handback.soon(loop, lambda: None)  # no error
    assert loop not in handback._outcomes._pending
