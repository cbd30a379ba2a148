"""SIGTERM during load: what runs finishes, what waits is done after restart.

The worker gets SIGTERM at a moment when its journal shows operations
running and others accepted but not started. It must exit 0 with every
running operation finished (none left ``running``); the accepted ones stay
in the journal and, with what was still on the broker, are done after the
restart. Then nothing is lost, doubled or stuck, and the disk matches.
A stop that found nothing still running (the work finished between the
journal read and the signal) proves less, so the test stops the worker
again, up to three times, until one stop had work to wait for.
"""

from __future__ import annotations

import pathlib
import random
import re
import signal
from collections.abc import Callable
from typing import Any

import pytest

from tests.faults.audit import wait_quiet
from tests.faults.load import Planner, Sender, reconcile
from tests.faults.rig import (
    BACKEND,
    audit_round,
    file_backend,
    journal_of,
    unexpected_errors,
    wait_for,
)
from tests.faults.tally import Tally
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import Worker

OPERATIONS = 400
#: SIGTERM rounds at most: a file operation takes milliseconds, so the
#: work the journal showed running may be done before the signal lands;
#: the test stops again until one stop caught work still running.
ROUNDS = 3
WAITED = re.compile(r"Waiting up to \S+ for (\d+) operation")


def _busy(worker: Worker) -> dict[str, list[dict[str, Any]]] | None:
    """The journal's running and accepted entries, once there are both."""
    rows = journal_of(worker).operations()
    running = [r for r in rows if r["state"] == "running"]
    accepted = [r for r in rows if r["state"] == "accepted"]
    return {"running": running, "accepted": accepted} if running and accepted else None


def _stop_busy(worker: Worker, tally: Tally) -> tuple[int, list[int]]:
    """SIGTERM while the journal shows work running and waiting: how many
    operations the stop waited for (0: none was still running) and the
    journal entries it left waiting."""
    waits = len(WAITED.findall(worker.log()))
    busy = wait_for(lambda: _busy(worker), 60, "operations running and waiting")
    worker.signal(signal.SIGTERM)
    tally.faults += 1
    assert worker.wait(60) == 0
    assert "STOPPING=1" in worker.notified
    after_stop = {r["seq"]: r for r in journal_of(worker).operations()}
    left_running = [r for r in after_stop.values() if r["state"] == "running"]
    assert left_running == [], "work running at SIGTERM was not finished"
    for row in busy["running"]:
        assert after_stop[row["seq"]]["state"] == "done", after_stop[row["seq"]]
    waiting = [r["seq"] for r in after_stop.values() if r["state"] == "accepted"]
    waited = WAITED.findall(worker.log())[waits:]
    return (int(waited[0]) if waited else 0), waiting


@pytest.mark.time_limit(150)
def test_sigterm_finishes_running_work_and_keeps_the_rest(
    tmp_path: pathlib.Path,
    shared_broker: None,
    make_worker: Callable[..., Worker],
    client: Callable[..., VolumeAPI],
    load: Callable[..., Sender],
    tally: Tally,
) -> None:
    pool = tmp_path / "pool"
    worker = make_worker(
        file_backend(pool),
        defaults={"max_concurrent_operations": 4, "graceful_shutdown_timeout": 30},
    )
    worker.start().wait_ready()
    api, server = client(worker), worker.server(BACKEND)
    planner = Planner(random.Random(), server)
    sender = load(api, server, planner.plan(OPERATIONS))

    finished, waiting = 0, []
    for _ in range(ROUNDS):
        finished, left = _stop_busy(worker, tally)
        waiting += left
        worker.start().wait_ready()
        if finished:
            break
    assert finished, f"nothing was still running at any of {ROUNDS} stops"

    sender.join(120)
    assert not sender.is_alive(), "the load did not finish"
    reconcile(planner.model, sender)
    quiet = wait_quiet(journal_of(worker), sender.casts, timeout=60)
    final = {r["seq"]: r for r in journal_of(worker).operations()}
    findings = audit_round(
        worker, pool, sender.casts, sender.calls, planner.model, tally
    )
    print(
        f"SIGTERM: {finished} operations finished during the stop, "
        f"{len(waiting)} waiting in the journal; "
        f"{sender.sent} sent, quiet={quiet}; {findings.report(5)}"
    )
    calls = {"initialize_connection", "terminate_connection"}
    for seq in waiting:
        # NOTE: a call that never started is abandoned: its caller gave up.
        want = "rolled_back" if final[seq]["action"] in calls else "done"
        assert final[seq]["state"] == want, final[seq]
    assert sender.failures == [], sender.failures
    assert not findings, findings.report(limit=40)
    assert unexpected_errors(worker) == []
    assert worker.stop() == 0
