"""kill -9 at a random moment of a mixed load, round after round.

Each round sends a new plan (creates, clones, creates from snapshots,
extends, snapshots and their deletion, reverts, deletes, attach and detach
calls) over volumes that live on from round to round, kills the worker, and
reads the evidence (see ``rounds.py``). The rounds run on four setups:

- the file driver, its pool in the test's temporary directory, the journal
  in SQLite (the default deployment);
- the file driver on XFS with reflink (snapshots and clones share blocks);
- the file driver with the journal in PostgreSQL (a cluster's database);
- the fake driver recording every backend effect, where work done twice
  shows.

The seed is printed; set ``VOLWORKER_FAULT_SEED`` to replay a run.
"""

from __future__ import annotations

import os
import pathlib
import random
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import pytest

from tests.contract.xfs import xfs_mount  # noqa: F401 - a fixture
from tests.faults.audit import Findings
from tests.faults.data import DataCheck
from tests.faults.load import Planner, Sender
from tests.faults.rig import BACKEND, file_backend, unexpected_errors
from tests.faults.rounds import KillRounds
from tests.faults.tally import Tally
from tests.unit.state.conftest import pg_url  # noqa: F401 - a fixture
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker


@dataclass(frozen=True)
class Setup:
    """What the worker runs on."""

    driver: str = "file"
    #: "tmp": the test's temporary directory; "xfs": a reflink XFS
    pool: str = "tmp"
    database: str = "sqlite"
    rounds: int = 3
    operations: int = 110


SETUPS = {
    "file-sqlite": Setup(rounds=5, operations=220),
    "file-xfs-reflink": Setup(pool="xfs"),
    "file-postgresql": Setup(database="postgresql"),
    "fake-effects-log": Setup(driver="fake", rounds=4, operations=220),
}
LIMITS = {"file-sqlite": 220, "fake-effects-log": 150}


def _seed() -> int:
    given = os.environ.get("VOLWORKER_FAULT_SEED")
    return int(given) if given else random.randrange(2**32)


def fs_type(path: pathlib.Path) -> str:
    """The type of the filesystem ``path`` is on (from /proc/mounts)."""
    best, kind = "", "unknown"
    target = str(path.resolve())
    with open("/proc/mounts") as mounts:
        for line in mounts:
            mount, fstype = line.split()[1:3]
            inside = target == mount or target.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best):
                best, kind = mount, fstype
    return kind


@pytest.fixture
def place(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> Iterator[pathlib.Path]:
    """Where the setup's pool goes."""
    setup = SETUPS[request.node.callspec.params["name"]]
    if setup.pool != "xfs":
        yield tmp_path / "pool"
        return
    pool = request.getfixturevalue("xfs_mount") / f"pool-{uuid.uuid4().hex[:8]}"
    yield pool
    shutil.rmtree(pool, ignore_errors=True)


def _worker(
    setup: Setup,
    request: pytest.FixtureRequest,
    pool: pathlib.Path,
    make_worker: Callable[..., Worker],
) -> Worker:
    if setup.driver == "fake":
        backend = {
            BACKEND: {
                "volume_driver": "fake",
                "fake_effects_log": pool.parent / "effects.jsonl",
                "fake_latency": 0.01,
            }
        }
    else:
        backend = file_backend(pool)
    extra: dict[str, dict[str, Any]] = {}
    if setup.database == "postgresql":
        extra["database"] = {"connection": request.getfixturevalue("pg_url")}
    return make_worker(
        backend,
        defaults={"max_concurrent_operations": 8, "graceful_shutdown_timeout": 5},
        extra=extra,
    )


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.time_limit(LIMITS.get(name, 120)))
        for name in SETUPS
    ],
)
def test_kill_9_during_mixed_load(  # noqa: PLR0913 - fixtures
    name: str,
    request: pytest.FixtureRequest,
    place: pathlib.Path,
    shared_broker: None,
    make_worker: Callable[..., Worker],
    client: Callable[..., VolumeAPI],
    notifications: Callable[..., Notifications],
    load: Callable[..., Sender],
    tally: Tally,
    kill_rounds: list[dict[str, Any]],
) -> None:
    setup = SETUPS[name]
    seed = _seed()
    print(f"VOLWORKER_FAULT_SEED={seed}")
    rng = random.Random(seed)
    worker = _worker(setup, request, place, make_worker)
    events = notifications(worker)
    worker.start().wait_ready()
    api = client(worker)
    planner = Planner(rng, worker.server(BACKEND))
    fake = setup.driver == "fake"
    rounds = KillRounds(
        worker,
        api,
        events,
        planner,
        load,
        tally,
        rng,
        pool=None if fake else place,
        effects_log=place.parent / "effects.jsonl" if fake else None,
        data=None if fake else DataCheck(api, planner, place, rng),
    )
    findings = Findings()
    for number in range(1, setup.rounds + 1):
        findings.extend(rounds.run(number, setup.operations))
    findings.extend(rounds.audit_effects())
    kill_rounds.append(
        rounds.summary(
            name, **asdict(setup), filesystem=None if fake else fs_type(place)
        )
    )
    assert not findings, findings.report(limit=40)
    assert any("running" in k.unfinished.values() for k in rounds.kills), (
        "no kill caught an operation running: no redo was tested"
    )
    assert unexpected_errors(worker) == []
    assert worker.stop() == 0
