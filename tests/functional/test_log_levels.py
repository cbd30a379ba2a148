"""Log levels change while the worker runs: SIGHUP re-reads ``debug`` and
``log_levels`` from the configuration files, and a debug line appears only
after the change (and goes away after the change back)."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable

from tests.functional.conftest import new_volume
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker

#: Logged at DEBUG by the runtime for every driver call.
DEBUG_LINE = re.compile(
    r"DEBUG volworker\.manager\.runtime .* driver\.create_volume took"
)


def _configure(worker: Worker, *lines: str) -> None:
    """The worker's config file with ``lines`` in its [DEFAULT] section."""
    text = re.sub(r"\n(debug|log_levels) = .*", "", worker.config.read_text())
    extra = "".join(f"{line}\n" for line in lines)
    worker.config.write_text(text.replace("[DEFAULT]\n", f"[DEFAULT]\n{extra}", 1))


def _reload(worker: Worker) -> None:
    seen = worker.log().count("Received SIGHUP")
    worker.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while worker.log().count("Received SIGHUP") == seen:
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.05)


def _debug_lines_for_a_create(
    worker: Worker, api: VolumeAPI, events: Notifications
) -> int:
    volume = new_volume(worker, "b1")
    api.create_volume(volume)
    events.wait_event("volume.create.end", volume["id"])
    time.sleep(0.2)  # the log line is written after the notification is queued
    return len([ln for ln in worker.log().splitlines() if DEBUG_LINE.search(ln)])


def test_sighup_turns_debug_on_and_off_without_a_restart(
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[[Worker], Notifications],
) -> None:
    worker = make_worker({"b1": {"volume_driver": "fake"}}).start().wait_ready()
    api, events = client(worker), notifications(worker)
    pid = worker.proc.pid if worker.proc else None
    assert _debug_lines_for_a_create(worker, api, events) == 0

    _configure(worker, "debug = true")
    _reload(worker)
    assert _debug_lines_for_a_create(worker, api, events) == 1
    assert "Option DEFAULT.debug changed" in worker.log()

    _configure(worker)
    _reload(worker)
    assert _debug_lines_for_a_create(worker, api, events) == 1
    assert worker.proc is not None and worker.proc.pid == pid
    assert worker.stop() == 0


def test_sighup_sets_one_logger_by_log_levels(
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[[Worker], Notifications],
) -> None:
    worker = make_worker({"b1": {"volume_driver": "fake"}}).start().wait_ready()
    api, events = client(worker), notifications(worker)
    assert _debug_lines_for_a_create(worker, api, events) == 0

    _configure(worker, "log_levels = volworker.manager.runtime=DEBUG")
    _reload(worker)
    assert _debug_lines_for_a_create(worker, api, events) == 1
    # only that logger: the state store's debug lines stay off
    assert " DEBUG volworker.state" not in worker.log()

    _configure(worker, "log_levels = volworker.manager.runtime=INFO,nonsense")
    _reload(worker)
    assert _debug_lines_for_a_create(worker, api, events) == 1
    assert "Ignoring log_levels entry 'nonsense'" in worker.log()
    assert worker.stop() == 0
