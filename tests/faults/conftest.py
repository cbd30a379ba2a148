"""Fixtures of the fault suite, its time limits and its closing line.

Every test records what it sent and what the evidence shows in a
:class:`Tally`; at the end of the session one line sums them up and says
whether the suite passed::

    fault suite passed: 12 tests, 14 kill rounds; operations sent 2342, ...

It says FAILED (and the session exits non-zero) when a fault test failed,
a kill round was cut short, or any problem was counted. The line goes to
``$VOLWORKER_FAULT_SUMMARY`` (default ``.pytest_cache/d/faults/summary.txt``)
and, with the counts, the machine and the date, to the results file
``$VOLWORKER_FAULT_RESULTS`` (default ``.pytest_cache/d/faults/results.json``),
from which ``scripts/readme-figures`` writes README.md's line.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import pathlib
import signal
import sys
import time
from collections.abc import Callable, Generator, Iterator
from types import FrameType
from typing import Any

import pytest

from tests.conftest import require_service
from tests.faults import results
from tests.faults.audit import nbd_servers
from tests.faults.load import Op, Sender
from tests.faults.tally import Tally, verdict
from tests.functional.conftest import client, make_worker, notifications
from volworker.rpc.rpcapi import VolumeAPI

__all__ = ["client", "kill_rounds", "load", "make_worker", "notifications"]

DEFAULT_TIME_LIMIT = 120.0
#: Limits of a test's setup and teardown (a mount, a database, a worker's
#: stop), which have no marker of their own.
FIXTURE_TIME_LIMIT = 120.0
SUMMARY_ENV = "VOLWORKER_FAULT_SUMMARY"
RESULTS_ENV = "VOLWORKER_FAULT_RESULTS"


class _Session:
    """The suite's running totals, kept on the pytest config."""

    def __init__(self) -> None:
        self.total = Tally()
        self.tests: set[str] = set()
        self.failed: set[str] = set()
        self.kill_rounds: list[dict[str, Any]] = []
        self.started = time.monotonic()


_SESSION = pytest.StashKey[_Session]()


def _session(config: pytest.Config) -> _Session:
    return config.stash.setdefault(_SESSION, _Session())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "time_limit(seconds): fail the test when it runs longer"
    )


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """The test's tally; added to the session's even when the test fails."""
    mine = Tally()
    yield mine
    _session(request.config).total.add(mine)


@pytest.fixture
def kill_rounds(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """Where a kill test says on what it ran (pool, database, driver,
    rounds), for the results file."""
    return _session(request.config).kill_rounds


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, Any, None]:
    """Which fault tests ran, and which failed in any phase."""
    outcome = yield
    report = outcome.get_result()
    state = _session(item.config)
    state.tests.add(report.nodeid)
    if report.failed:
        state.failed.add(report.nodeid)


def _path(config: pytest.Config, env: str, name: str) -> pathlib.Path:
    given = os.environ.get(env)
    if given:
        return pathlib.Path(given)
    cache = getattr(config, "cache", None)
    if cache is not None:
        return pathlib.Path(cache.mkdir("faults")) / name
    return pathlib.Path(config.rootpath, ".pytest_cache", f"fault-{name}")


def _closing(config: pytest.Config) -> tuple[bool, str] | None:
    state = config.stash.get(_SESSION, None)
    if state is None or not state.tests:
        return None
    return verdict(state.total, len(state.tests), len(state.failed))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    closing = _closing(config)
    if closing is None:
        return
    passed, line = closing
    state = config.stash[_SESSION]
    terminalreporter.write_line(line, red=not passed, green=passed, bold=True)
    with contextlib.suppress(OSError):
        path = _path(config, SUMMARY_ENV, "summary.txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(line + "\n")
    try:
        written = results.write(
            _path(config, RESULTS_ENV, "results.json"),
            passed=passed,
            line=line,
            total=state.total,
            tests=sorted(state.tests),
            failed=sorted(state.failed),
            seconds=time.monotonic() - state.started,
            kill_rounds=state.kill_rounds,
        )
        terminalreporter.write_line(f"fault suite results: {written}")
    except OSError as exc:
        terminalreporter.write_line(f"fault suite results not written: {exc}")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A failed verdict fails the session, whatever else passed."""
    closing = _closing(session.config)
    if closing is not None and not closing[0] and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
