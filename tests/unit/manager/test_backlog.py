"""The backlog the intake respects: full at its limit, room again once down
to three quarters of it, and no wake-up lost between two threads."""

from __future__ import annotations

import threading
import time

import pytest

from volworker.manager.backlog import Backlog, default_limit


def test_full_at_the_limit_and_room_again_at_resume() -> None:
    backlog = Backlog(8)
    assert backlog.resume_at == 6
    for _ in range(7):
        backlog.taken()
    assert not backlog.full()
    backlog.taken()
    assert backlog.full() and backlog.count == 8
    backlog.finished()
    assert backlog.full(), "one finished is not yet room for a batch"
    backlog.finished()
    assert not backlog.full() and backlog.count == 6


def test_a_limit_of_one_still_moves() -> None:
    backlog = Backlog(1)
    backlog.taken()
    assert backlog.full()
    backlog.finished()
    assert not backlog.full()


def test_the_default_is_twice_the_concurrency() -> None:
    assert default_limit(0, 32) == 64
    assert default_limit(None, 4) == 8
    assert default_limit(10, 32) == 10
    with pytest.raises(ValueError):
        Backlog(0)


def test_no_wake_up_is_lost_between_the_two_threads() -> None:
    """An intake thread that takes while there is room and a worker thread
    that finishes what was taken: both get to the end."""
    backlog = Backlog(4)
    total = 20_000
    work: list[int] = []
    lock = threading.Condition()

    def intake() -> None:
        for n in range(total):
            while backlog.full():
                assert backlog.wait(5), f"no room after {n} taken"
            backlog.taken()
            with lock:
                work.append(n)
                lock.notify()

    def finisher() -> None:
        for _ in range(total):
            with lock:
                while not work:
                    assert lock.wait(5)
                work.pop()
            backlog.finished()

    threads = [threading.Thread(target=intake), threading.Thread(target=finisher)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert backlog.count == 0 and not backlog.full()
    assert time.monotonic() - began < 60
