"""Kill rounds: a mixed load cut by kill -9, and the evidence read after it.

Each round sends a new plan over volumes that live on from round to round
and kills the worker with SIGKILL once a random share of the round's casts
is finished, at a moment the journal shows work in flight. Every second
round kills again while the restarted worker redoes what the first kill
interrupted. Each kill must have hit work in flight: the journal, read once
the worker is dead, shows operations accepted or running.

After the round: nothing sent is lost, failed or stuck, every record
matches the disk and the load's model (``audit``), the outside listener
heard every end once (``heard``), and a sample of the bytes reads back
(``data``, file driver). Work done twice shows in the fake backend's
effects log (``effects``), audited over all rounds at the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import pathlib
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from tests.faults.audit import FINISHED, Findings, Journal, wait_quiet
from tests.faults.data import DataCheck
from tests.faults.effects import audit_effects
from tests.faults.heard import audit_notifications
from tests.faults.journal import utc
from tests.faults.load import Op, Planner, Sender, reconcile
from tests.faults.rig import BACKEND, audit_round, journal_of, wait_for
from tests.faults.tally import Tally
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker
from volworker_drivers.fake import effects

__all__ = ["Kill", "KillRounds"]

UNFINISHED = ("accepted", "running")
#: So few operations left unfinished that the kill must not wait longer.
FEW = 5


@dataclass
class Kill:
    """What one kill left in the journal: request id -> state."""

    unfinished: dict[str, str]
    during_recovery: int = 0

    def describe(self) -> str:
        states = Counter(self.unfinished.values())
        text = f"{states['running']} running, {states['accepted']} accepted"
        if self.during_recovery:
            text += f" ({self.during_recovery} of them redone when killed)"
        return text


@dataclass
class KillRounds:
    """One worker under kill rounds, and everything that audits it."""

    worker: Worker
    api: VolumeAPI
    events: Notifications
    planner: Planner
    load: Callable[..., Sender]
    tally: Tally
    rng: random.Random
    pool: pathlib.Path | None = None
    effects_log: pathlib.Path | None = None
    data: DataCheck | None = None
    #: the backend's own audit where there is no pool directory (rbd): the
    #: journal in, what does not match out
    check: Callable[[Journal], list[str]] | None = None
    #: how long a restart may take to READY=1
    ready_timeout: float = 30
    casts: list[Op] = field(default_factory=list)
    #: request id -> how many kills found it unfinished
    in_flight: Counter[str] = field(default_factory=Counter)
    kills: list[Kill] = field(default_factory=list)

    def summary(self, setup: str, **where: Any) -> dict[str, Any]:
        """What the results file says of these rounds: the ``setup``'s name,
        ``where`` they ran (driver, database, filesystem, rounds,
        operations) and the kills."""
        return {
            "setup": setup,
            **where,
            "kills": len(self.kills),
            "kills_with_work_running": sum(
                "running" in k.unfinished.values() for k in self.kills
            ),
        }

    def _rows(self) -> list[dict[str, Any]]:
        return journal_of(self.worker).operations()

    def _finished(self, sender: Sender) -> int:
        wanted = {op.request_id for op in sender.casts}
        rows = self._rows()
        return sum(
            1 for r in rows if r["request_id"] in wanted and r["state"] in FINISHED
        )

    def _kill(self) -> Kill:
        """SIGKILL; then the journal must show work in flight."""
        self.worker.signal(signal.SIGKILL)
        self.worker.wait(10)
        self.tally.faults += 1
        unfinished = {
            str(r["request_id"]): r["state"]
            for r in self._rows()
            if r["state"] in UNFINISHED
        }
        assert unfinished, "the kill hit no work in flight: nothing accepted or running"
        self.in_flight.update(unfinished.keys())
        kill = Kill(unfinished)
        self.kills.append(kill)
        return kill

    def _moment(self) -> bool:
        """An operation runs (its redo is what is tested), or the work in
        flight is running out: kill now."""
        states = [r["state"] for r in self._rows() if r["state"] in UNFINISHED]
        return "running" in states or len(states) <= FEW

    def _kill_midway(self, sender: Sender, share: float) -> Kill:
        casts = sum(1 for op in sender.ops if not op.is_call)
        target = max(1, int(share * casts))
        wait_for(lambda: self._finished(sender) >= target, 60, f"{target} casts done")
        with contextlib.suppress(AssertionError):
            wait_for(self._moment, 0.5, "an operation running", interval=0.005)
        return self._kill()

    def _redone(self, first: Kill, since: dt.datetime) -> set[str]:
        """The first kill's unfinished work the new process has begun."""
        with contextlib.suppress(sa.exc.OperationalError):
            return {
                str(r["request_id"])
                for r in self._rows()
                if r["request_id"] in first.unfinished
                and (utc(r["started_at"]) or since) > since
            }
        return set()

    def _kill_recovering(self, first: Kill) -> Kill:
        """Start again and kill as soon as the redo is under way: recovery
        marks each operation it takes up running. (Or at READY=1, should it
        take up none: calls that never started are only abandoned.)"""
        since = dt.datetime.now(dt.UTC)
        self.worker.start()
        ready = functools.partial(self.worker.wait_notified, "READY=1", 0.001)
        wait_for(
            lambda: self._redone(first, since) or ready(),
            30,
            "recovery under way",
            interval=0.005,
        )
        kill = self._kill()
        kill.during_recovery = len(self._redone(first, since) & kill.unfinished.keys())
        return kill

    def _restart(self) -> dt.datetime:
        since = dt.datetime.now(dt.UTC)
        self.worker.start().wait_ready(self.ready_timeout)
        return since

    def run(self, number: int, operations: int) -> Findings:
        """One round; every second one kills twice. A round cut short by
        an error counts as aborted."""
        try:
            return self._round(number, operations)
        except BaseException:
            self.tally.aborted += 1
            raise

    def _round(self, number: int, operations: int) -> Findings:
        started = time.monotonic()
        data_calls = self.data.calls if self.data is not None else 0
        if self.data is not None:
            self.data.write()
        plan = self.planner.plan(operations)
        if self.data is not None:
            self.data.contents.follow(plan)
        server = self.worker.server(BACKEND)
        sender = self.load(self.api, server, plan)
        kills = [self._kill_midway(sender, self.rng.uniform(0.05, 0.9))]
        if number % 2 == 0:
            kills.append(self._kill_recovering(kills[0]))
        since = self._restart()
        sender.join(120)
        assert not sender.is_alive(), "the load did not finish"
        reconcile(self.planner.model, sender)
        self.casts += sender.casts
        quiet = wait_quiet(journal_of(self.worker), sender.casts, timeout=60)
        found = self._audit(sender, since)
        if self.data is not None:
            self.tally.sent += self.data.calls - data_calls
        self.tally.rounds += 1
        print(
            f"round {number}: {sender.sent} sent, killed with "
            f"{'; again with '.join(k.describe() for k in kills)}; "
            f"quiet={quiet} after {time.monotonic() - started:.1f}s; "
            f"{found.report(5)}"
        )
        return found

    def _audit(self, sender: Sender, since: dt.datetime) -> Findings:
        found = audit_round(
            self.worker,
            self.pool,
            sender.casts,
            sender.calls,
            self.planner.model,
            self.tally,
        )
        more = audit_notifications(self.events, sender.casts, self._rows(), since)
        if self.check is not None:
            more.mismatched += self.check(journal_of(self.worker))
        more.failed += sender.failures
        if self.data is not None:
            checked, more.data = self.data.read_back()
            self.tally.read_back += checked
        self.tally.count(more)
        found.extend(more)
        return found

    def audit_effects(self) -> Findings:
        """Work done twice, or never, by the backend, over every round."""
        if self.effects_log is None:
            return Findings()
        done = {str(r["request_id"]) for r in self._rows() if r["state"] == "done"}
        found = audit_effects(
            effects.read(str(self.effects_log)), self.casts, done, self.in_flight
        )
        self.tally.count(found)
        return found
