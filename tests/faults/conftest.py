"""Fixtures of the fault suite, its time limits and its summary line.

Every test records what it sent and what it found in a :class:`Tally`; at
the end of the session one line sums them up::

    fault suite: operations sent 1234, faults injected 17, lost 0, duplicated 0, stuck 0

The line is printed and written to ``$VOLWORKER_FAULT_SUMMARY`` (default
``.pytest_cache/d/faults/summary.txt``).
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import pathlib
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest

from tests.conftest import require_service
from tests.faults.audit import nbd_servers
from tests.faults.load import Op, Sender
from tests.faults.tally import Tally
from tests.functional.conftest import client, make_worker, notifications
from volworker.rpc.rpcapi import VolumeAPI

__all__ = ["client", "load", "make_worker", "notifications"]

DEFAULT_TIME_LIMIT = 120.0
#: Limits of a test's setup and teardown (a mount, a database, a worker's
#: stop), which have no marker of their own.
FIXTURE_TIME_LIMIT = 120.0
SUMMARY_ENV = "VOLWORKER_FAULT_SUMMARY"


_SESSION = pytest.StashKey[Tally]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "time_limit(seconds): fail the test when it runs longer"
    )


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """The test's tally; added to the session's even when the test fails."""
    mine = Tally()
    yield mine
    request.config.stash.setdefault(_SESSION, Tally()).add(mine)


def _summary_path(config: pytest.Config) -> pathlib.Path:
    given = os.environ.get(SUMMARY_ENV)
    if given:
        return pathlib.Path(given)
    cache = getattr(config, "cache", None)
    if cache is not None:
        return pathlib.Path(cache.mkdir("faults")) / "summary.txt"
    return pathlib.Path(config.rootpath, ".pytest_cache", "fault-summary.txt")


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    total = config.stash.get(_SESSION, None)
    if total is None:
        return
    line = total.line()
    terminalreporter.write_line(line)
    path = _summary_path(config)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(line + "\n")


class TimeLimitExceeded(Exception):
    """A test, or its setup or teardown, ran past its limit."""


def _limit(item: pytest.Item) -> float:
    marker = item.get_closest_marker("time_limit")
    return float(marker.args[0]) if marker else DEFAULT_TIME_LIMIT


@contextlib.contextmanager
def _alarm(item: pytest.Item, phase: str, limit: float) -> Iterator[None]:
    """Raise TimeLimitExceeded in the phase at its limit, and again every
    30 s should something swallow it, so a hang becomes this test's failure
    and the run goes on. A minute and a half after the limit, every
    thread's stack is dumped to show where it hung (the run is never cut
    short: a dump that exits would cost the session its summary)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeLimitExceeded(f"{item.nodeid}: {phase} ran over {limit:.0f}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit, 30)
    faulthandler.dump_traceback_later(limit + 90, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# The phase hooks, unlike pytest_runtest_protocol, are called for the
# items of this directory only: the limits never reach other suites' tests.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _alarm(item, "setup", FIXTURE_TIME_LIMIT):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Bound the test itself: TimeLimitExceeded is raised in it at its
    limit, so its fixtures still clean up."""
    with _alarm(item, "call", _limit(item)):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    with _alarm(item, "teardown", FIXTURE_TIME_LIMIT):
        yield


@pytest.fixture
def load() -> Iterator[Callable[..., Sender]]:
    """Start a :class:`Sender`; every one still running is halted at the
    end of the test, so no thread outlives it."""
    senders: list[Sender] = []

    def start(api: VolumeAPI, server: str, ops: list[Op], **kwargs: Any) -> Sender:
        sender = Sender(api, server, ops, **kwargs)
        senders.append(sender)
        sender.start()
        return sender

    yield start
    for sender in senders:
        sender.halt()
    for sender in senders:
        sender.join(30)


@pytest.fixture
def shared_broker() -> None:
    require_service("rabbitmq", 5672)


@pytest.fixture(autouse=True)
def _no_leaked_exports(tmp_path: pathlib.Path) -> Iterator[None]:
    """Stop the qemu-nbd servers a test's worker left behind (found by
    their pid files under the test's own directory)."""
    yield
    for pid in nbd_servers(tmp_path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
