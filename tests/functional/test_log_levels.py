"""Log levels change while the worker runs: SIGHUP re-reads ``debug`` and
``log_levels`` from the configuration files, and a debug line appears only
after the change (and goes away after the change back)."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable

import pytest

from tests.functional.conftest import new_volume
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker

#: Logged at DEBUG by the runtime for every driver call.
DEBUG_LINE = re.compile(
    r"DEBUG volworker\.manager\.runtime .* driver\.create_volume took"
)


class Running:
    """A worker serving fake backend b1, and what a test does to it."""

    def __init__(self, worker: Worker, api: VolumeAPI, events: Notifications) -> None:
        self.worker, self.api, self.events = worker, api, events

    def reconfigure(self, *lines: str) -> None:
        """Put ``lines`` in the config's [DEFAULT] section and send SIGHUP."""
        worker = self.worker
        text = re.sub(r"\n(debug|log_levels) = .*", "", worker.config.read_text())
        extra = "".join(f"{line}\n" for line in lines)
        worker.config.write_text(text.replace("[DEFAULT]\n", f"[DEFAULT]\n{extra}", 1))
        seen = worker.log().count("Received SIGHUP")
        worker.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while worker.log().count("Received SIGHUP") == seen:
            assert time.monotonic() < deadline, worker.log()
            time.sleep(0.05)

    def debug_lines_after_a_create(self) -> int:
        volume = new_volume(self.worker, "b1")
        self.api.create_volume(volume)
        self.events.wait_event("volume.create.end", volume["id"])
        time.sleep(0.2)  # the log line is written after the notification is queued
        lines = self.worker.log().splitlines()
        return len([line for line in lines if DEBUG_LINE.search(line)])


@pytest.fixture
def running(
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[[Worker], Notifications],
) -> Running:
    worker = make_worker({"b1": {"volume_driver": "fake"}}).start().wait_ready()
    found = Running(worker, client(worker), notifications(worker))
    assert found.debug_lines_after_a_create() == 0
    return found


def test_sighup_turns_debug_on_and_off_without_a_restart(running: Running) -> None:
    proc = running.worker.proc
    running.reconfigure("debug = true")
    assert running.debug_lines_after_a_create() == 1
    assert "Option DEFAULT.debug changed" in running.worker.log()

    running.reconfigure()
    assert running.debug_lines_after_a_create() == 1
    assert running.worker.proc is proc and not running.worker.exited()
    assert running.worker.stop() == 0


def test_sighup_sets_one_logger_by_log_levels(running: Running) -> None:
    running.reconfigure("log_levels = volworker.manager.runtime=DEBUG")
    assert running.debug_lines_after_a_create() == 1
    # only that logger: the state store's debug lines stay off
    assert " DEBUG volworker.state" not in running.worker.log()

    running.reconfigure("log_levels = volworker.manager.runtime=INFO,nonsense")
    assert running.debug_lines_after_a_create() == 1
    assert "Ignoring log_levels entry 'nonsense'" in running.worker.log()
    assert running.worker.stop() == 0
