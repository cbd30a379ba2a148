"""kill -9 at a random moment of a mixed load, round after round.

Each round sends a new plan (creates, clones, creates from snapshots,
extends, snapshots and their deletion, reverts, deletes, attach and detach
calls) over volumes that live on from round to round, kills the worker with
SIGKILL once a random share of the round is done, starts it again and lets it
finish. After every round: nothing sent is lost or done twice, nothing is
stuck, every record matches the disk and the load's model.

The seed is printed; set ``VOLWORKER_FAULT_SEED`` to replay a run.
"""

from __future__ import annotations

import os
import pathlib
import random
import signal
import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests.faults.audit import FINISHED, Findings, wait_quiet
from tests.faults.load import Planner, Sender, reconcile
from tests.faults.rig import (
    audit_round,
    file_backend,
    journal_of,
    unexpected_errors,
    wait_for,
)
from tests.faults.tally import Tally
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import Worker

ROUNDS = 5
OPS_PER_ROUND = 220


def _seed() -> int:
    given = os.environ.get("VOLWORKER_FAULT_SEED")
    return int(given) if given else random.randrange(2**32)


def _finished(worker: Worker, sender: Sender) -> int:
    """How many of the round's casts the journal has finished."""
    wanted = {op.request_id for op in sender.casts}
    rows = journal_of(worker).operations()
    return sum(1 for r in rows if r["request_id"] in wanted and r["state"] in FINISHED)


def _kill_midway(worker: Worker, sender: Sender, share: float) -> str:
    """SIGKILL the worker once ``share`` of the round's casts is finished;
    say what it left in the journal."""
    casts = sum(1 for op in sender.ops if not op.is_call)
    target = max(1, int(share * casts))
    wait_for(lambda: _finished(worker, sender) >= target, 60, f"{target} casts done")
    worker.signal(signal.SIGKILL)
    worker.wait(10)
    states = Counter(r["state"] for r in journal_of(worker).operations())
    return f"{states['running']} running, {states['accepted']} accepted"


@pytest.mark.time_limit(150)
def test_kill_9_during_mixed_load(
    tmp_path: pathlib.Path,
    shared_broker: None,
    make_worker: Callable[..., Worker],
    client: Callable[..., VolumeAPI],
    load: Callable[..., Sender],
    tally: Tally,
) -> None:
    seed = _seed()
    print(f"VOLWORKER_FAULT_SEED={seed}")
    rng = random.Random(seed)
    pool = tmp_path / "pool"
    worker = make_worker(
        file_backend(pool),
        defaults={"max_concurrent_operations": 8, "graceful_shutdown_timeout": 5},
    )
    worker.start().wait_ready()
    api = client(worker)
    planner = Planner(rng, worker.server("b1"))
    findings = Findings()
    for number in range(1, ROUNDS + 1):
        started = time.monotonic()
        sender = load(api, worker.server("b1"), planner.plan(OPS_PER_ROUND))
        left = _kill_midway(worker, sender, rng.uniform(0.05, 0.9))
        tally.faults += 1
        worker.start().wait_ready()
        if rng.random() < 0.5:
            # NOTE: again while it redoes what the first kill interrupted.
            time.sleep(rng.uniform(0.0, 0.3))
            worker.signal(signal.SIGKILL)
            worker.wait(10)
            tally.faults += 1
            left += "; killed again while recovering"
            worker.start().wait_ready()
        sender.join(120)
        assert not sender.is_alive(), "the load did not finish"
        reconcile(planner.model, sender)
        quiet = wait_quiet(journal_of(worker), sender.casts, timeout=60)
        found = audit_round(
            worker, pool, sender.casts, sender.calls, planner.model, tally
        )
        found.failed += sender.failures
        print(
            f"round {number}: {sender.sent} sent, killed with {left}, "
            f"quiet={quiet} after {time.monotonic() - started:.1f}s; "
            f"{found.report(5)}"
        )
        findings.extend(found)
    assert not findings, findings.report(limit=40)
    assert unexpected_errors(worker) == []
    assert worker.stop() == 0
