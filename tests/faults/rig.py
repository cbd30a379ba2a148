"""What the fault tests share: a file backend for a worker, where its
journal and state live, and what its log must not say."""

from __future__ import annotations

import configparser
import pathlib
import time
from collections.abc import Callable
from typing import Any

from tests.faults.audit import Findings, account, check_disk, check_model
from tests.faults.journal import Journal
from tests.faults.load import CallOutcome, Model, Op
from tests.faults.tally import Tally
from volworker.testing.worker import Worker

__all__ = [
    "BACKEND",
    "audit_round",
    "file_backend",
    "journal_of",
    "state_dir",
    "unexpected_errors",
    "wait_for",
]

BACKEND = "b1"
#: Log lines that only an unexpected exception writes.
UNEXPECTED = ("Traceback", "failed unexpectedly", "Intake of", "Dispatching")


def file_backend(pool: pathlib.Path, **options: Any) -> dict[str, dict[str, Any]]:
    return {BACKEND: {"volume_driver": "file", "file_pools": f"p:{pool}", **options}}


def journal_of(worker: Worker) -> Journal:
    """The database the worker was configured with: its own SQLite under
    its state path unless ``[database] connection`` names another."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(worker.config)
    url = config.get("database", "connection", fallback="")
    if url:
        return Journal(url)
    return Journal.sqlite(worker.dir / "state" / "volworker.sqlite")


def state_dir(worker: Worker) -> pathlib.Path:
    return worker.dir / "state" / BACKEND


#: oslo.messaging's own report of a message it could not even unpack
#: (a body that is no request envelope), which it drops with a traceback.
DROPPED_BY_OSLO = "Failed to process message ... skipping it."


def _prefix(line: str) -> str:
    """Date, time, pid, level and logger: shared by one record's lines."""
    return " ".join(line.split(" ", 5)[:5])


def ended_cleanly(worker: Worker) -> list[str]:
    """What is wrong at the end of a run: operations the journal still has
    accepted or running, and log lines of an unexpected exception."""
    stuck = [
        f"{r['request_id']} still {r['state']}"
        for r in journal_of(worker).operations()
        if r["state"] in ("accepted", "running")
    ]
    return stuck + unexpected_errors(worker)


def unexpected_errors(worker: Worker) -> list[str]:
    """The log lines that show an exception nobody expected."""
    lines = worker.log().splitlines()
    dropped = {_prefix(line) for line in lines if DROPPED_BY_OSLO in line}
    return [
        line
        for line in lines
        if any(marker in line for marker in UNEXPECTED) and _prefix(line) not in dropped
    ]


def wait_for(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def audit_round(
    worker: Worker,
    pool: pathlib.Path | None,
    casts: list[Op],
    calls: list[CallOutcome],
    model: Model | None,
    tally: Tally,
    *,
    expect_success: bool = True,
) -> Findings:
    """Account for one round of load from the database and the disk (no
    disk for a backend without a pool), and add it to the tally."""
    journal = journal_of(worker)
    findings = account(journal, casts, calls, expect_success=expect_success)
    if pool is not None:
        findings.mismatched += check_disk(journal, pool, state_dir(worker))
    if model is not None:
        findings.mismatched += check_model(journal, model)
    tally.sent += len(casts) + len(calls)
    tally.count(findings)
    return findings
