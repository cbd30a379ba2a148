"""Results handed back from other threads to an event loop, many per wake-up.

A thread that finishes work for a coroutine must wake the coroutine's loop:
``loop.call_soon_threadsafe`` writes to the loop's self-pipe, and the loop
turns once for it. ``loop.run_in_executor`` does that for every call, and
chains a ``concurrent.futures.Future`` to the awaited one with callbacks
both ways. Under load many calls finish between two turns of the loop, so
here each outcome joins its loop's list and only the first of a list wakes
the loop, which then settles every outcome that came in the meantime. The
state store hands each batch's outcomes back the same way (:func:`hand_back`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

__all__ = ["Outcome", "call", "hand_back", "soon"]

P = ParamSpec("P")
T = TypeVar("T")

#: an awaited future, whether the work succeeded, and its result or error
Outcome = tuple["asyncio.Future[Any]", bool, Any]


def _settle(settled: list[Outcome]) -> None:
    """On the awaiting loop: hand each future its outcome."""
    for awaited, ok, value in settled:
        if awaited.done():
            continue  # cancelled by its awaiter
        if ok:
            awaited.set_result(value)
        elif isinstance(value, concurrent.futures.CancelledError):
            awaited.cancel()
        else:
            awaited.set_exception(value)


class _Due:
    """What waits for one loop: outcomes to settle, then calls to make."""

    __slots__ = ("calls", "outcomes")

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.calls: list[Callable[[], None]] = []


class Outcomes:
    """Outcomes and calls from any thread for any loop: a loop is woken
    once for all that came before it looked, whichever thread sent them.

    Each wake-up is a write to the loop's self-pipe, a system call during
    which the writing thread lets go of the GIL and after which it waits
    for it again behind the worker's other busy threads. The state store's
    thread, the RPC thread and the driver pool all hand work to the one
    loop, so a wake-up one of them made serves the others until the loop
    has looked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[asyncio.AbstractEventLoop, _Due] = {}

    def put(self, outcomes: Iterable[Outcome]) -> None:
        woken = []
        with self._lock:
            for outcome in outcomes:
                loop = outcome[0].get_loop()
                due, new = self._due(loop)
                if new:
                    woken.append(loop)
                due.outcomes.append(outcome)
        for loop in woken:
            self._wake(loop)

    def soon(self, loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
        """Call ``fn`` on ``loop`` after the outcomes that came before it.
        Calls keep their order; a loop that has closed drops them."""
        with self._lock:
            due, new = self._due(loop)
            due.calls.append(fn)
        if new:
            self._wake(loop)

    def _due(self, loop: asyncio.AbstractEventLoop) -> tuple[_Due, bool]:
        """What waits for ``loop``, and whether it is new: only then must
        the loop be woken (under the lock)."""
        due = self._pending.get(loop)
        if due is not None:
            return due, False
        due = self._pending[loop] = _Due()
        return due, True

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.call_soon_threadsafe(self._take, loop)
        except RuntimeError:
            # A loop that has closed has nobody awaiting any more.
            with self._lock:
                self._pending.pop(loop, None)

    def _take(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            due = self._pending.pop(loop, None)
        if due is None:
            return
        _settle(due.outcomes)
        for fn in due.calls:
            # As its own callback: an error in one goes to the loop's
            # exception handler and the others still run.
            loop.call_soon(fn)


_outcomes = Outcomes()


def hand_back(outcomes: Iterable[Outcome]) -> None:
    """From any thread: settle each outcome's future on its loop, each loop
    woken at most once for all that came before it looked."""
    _outcomes.put(outcomes)


def soon(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    """From any thread: ``loop.call_soon_threadsafe(fn)``, sharing the
    wake-up with every outcome and call handed to ``loop`` before it looked
    (and dropped, not raised, when the loop has closed)."""
    _outcomes.soon(loop, fn)


def _run(awaited: asyncio.Future[T], work: Callable[[], T]) -> None:
    # Cancelled while it waited for a thread: not begun, as with
    # run_in_executor. (Reading the flag from this thread may miss a
    # cancel that comes at this moment; the outcome is then dropped.)
    if awaited.cancelled():
        return
    try:
        result = work()
    except BaseException as exc:  # like concurrent.futures: the caller's
        hand_back([(awaited, False, exc)])
    else:
        hand_back([(awaited, True, result)])


async def call(
    executor: concurrent.futures.Executor,
    fn: Callable[P, T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``fn(*args, **kwargs)`` on ``executor``, awaited: what
    ``loop.run_in_executor`` does, with the loop woken once per batch of
    finished calls instead of once per call."""
    awaited: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    submitted = executor.submit(_run, awaited, functools.partial(fn, *args, **kwargs))
    # An executor shut down with cancel_futures never runs it: the caller is
    # cancelled then, not left waiting.
    submitted.add_done_callback(functools.partial(_unless_run, awaited))
    return await awaited


def _unless_run(
    awaited: asyncio.Future[Any], submitted: concurrent.futures.Future[None]
) -> None:
    if submitted.cancelled():
        hand_back([(awaited, False, concurrent.futures.CancelledError())])
