"""Three members under a mixed load of 330 operations on shared storage;
one is killed with kill -9 mid-load and never comes back.

Every request goes to the cluster's queue, which the members take from
independently; so, as a scheduler would, the load sends a volume's next
request once the journal shows the one before it finished. The load makes
no attachments: what becomes of a dead member's attachments, and of a
detach that reaches a member which does not serve the attachment, is
tested in test_attachments. Within the
member timeout plus a minute, everything it had accepted is finished or
rolled back by the others: nothing lost, nothing done twice, nothing left
in a transitional status, and the pool's files match the records.

Every count comes from evidence: the journal and records in PostgreSQL,
the files in the pool and the NBD servers alive; the test prints them.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.cluster.conftest import BACKEND, MEMBER_TIMEOUT, Cluster, file_backend
from tests.faults.audit import account, check_disk, nbd_servers, wait_quiet
from tests.faults.journal import Journal
from tests.faults.load import Op, Planner, Sender, reconcile
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import Worker

OPERATIONS = 330


class FinishedWatch(threading.Thread):
    """Which requests the journal shows finished, looked up a few times a
    second (one query for every waiting request)."""

    def __init__(self, journal: Journal) -> None:
        super().__init__(daemon=True, name="finished-watch")
        self.journal = journal
        self.done: set[str] = set()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.1):
            with contextlib.suppress(Exception):
                rows = self.journal.query(
                    "SELECT request_id FROM operations WHERE state IN "
                    "('done', 'failed', 'rolled_back', 'skipped')"
                )
                self.done = {str(r["request_id"]) for r in rows}

    def finished(self, op: Op) -> bool:
        return op.request_id in self.done

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def _seed() -> int:
    given = os.environ.get("VOLWORKER_FAULT_SEED")
    return int(given) if given else random.randrange(2**32)


def _in_flight(journal: Journal, member: str) -> list[dict[str, Any]]:
    return [
        row
        for row in journal.query(
            "SELECT request_id, state, owner FROM operations "
            "WHERE state IN ('accepted', 'running')"
        )
        if str(row["owner"]).startswith(member + "/")
    ]


def _until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)
    return found


def _kill_host(member: Worker) -> None:
    """The member's machine dies: the worker and its NBD servers."""
    member.signal(signal.SIGKILL)
    member.wait(10)
    for pid in nbd_servers(member.dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_dead_member_of_three_is_taken_over_under_load(
    cluster_of: Callable[[dict[str, Any]], Cluster],
    client: Callable[[Worker], VolumeAPI],
    tmp_path: pathlib.Path,
) -> None:
    seed = _seed()
    print(f"VOLWORKER_FAULT_SEED={seed}")
    pool = tmp_path / "shared-pool"
    cluster = cluster_of(file_backend(pool))
    members = [cluster.add(name).start() for name in "abc"]
    for member in members:
        member.wait_ready()
    victim = members[1]
    journal = Journal(cluster.pg_url)
    planner = Planner(random.Random(seed), cluster.server, attach=False)
    finished = FinishedWatch(journal)
    sender = Sender(
        client(members[0]),
        cluster.server,
        planner.plan(OPERATIONS),
        settled=finished.finished,
        concurrent_calls=24,
    )
    finished.start()
    sender.start()
    _until(
        lambda: len(_in_flight(journal, victim.server(BACKEND))) >= 3,
        60,
        "the victim to have work in flight",
    )
    left = Counter(r["state"] for r in _in_flight(journal, victim.server(BACKEND)))
    killed = time.monotonic()
    _kill_host(victim)
    sender.join(MEMBER_TIMEOUT + 120)
    finished.stop()
    assert not sender.is_alive(), "the load did not finish"
    reconcile(planner.model, sender)
    quiet = wait_quiet(journal, sender.casts, timeout=MEMBER_TIMEOUT + 60)
    took = time.monotonic() - killed

    found = account(journal, sender.casts, sender.calls)
    found.mismatched += check_disk(journal, pool, tmp_path)
    owners = Counter(
        str(r["owner"]).partition("/")[0]
        for r in journal.query("SELECT owner FROM operations")
    )
    print(
        f"cluster: {len(sender.casts) + len(sender.calls)} operations sent to 3 "
        f"members; {victim.server(BACKEND)} killed with {left['running']} "
        f"running, {left['accepted']} accepted; quiet={quiet} {took:.1f}s later; "
        f"lost {len(found.lost)}, duplicated {len(found.duplicated)}, stuck "
        f"{len(found.stuck)}, failed {len(found.failed)}, mismatched "
        f"{len(found.mismatched)}; journal owners {dict(owners)}"
    )
    assert quiet, found.report()
    assert not found, found.report(limit=30)
    assert sender.failures == []
    taken = [o for o in owners if o != victim.server(BACKEND)]
    assert len(taken) == 2
    for member in (members[0], members[2]):
        assert member.stop() == 0
