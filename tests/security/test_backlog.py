"""A flood of casts waits on the broker, not in the worker's memory, and none
is lost; a call behind the backlog keeps its place, and one whose caller
gave up expires on the broker instead of running late; with the default
durable queues, a backlog survives a restart of the broker."""

from __future__ import annotations

import pathlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import kombu
import oslo_messaging
import psutil
import pytest

from tests.faults.audit import Journal
from tests.faults.broker import PrivateBroker
from tests.faults.rig import journal_of, wait_for
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.metrics import metrics_url, scrape
from volworker.testing.worker import BROKER_URL, Worker

BACKEND = "fake1"
MiB = 1024 * 1024
#: A slow backend: two operations at once, 10 ms each; intake limit 4.
SLOW = {"volume_driver": "fake", "fake_latency": 0.01}
SLOW_DEFAULTS = {"max_concurrent_operations": 2}
LIMIT = 4


def _unfinished(journal: Journal) -> int:
    rows = journal.query(
        "SELECT count(*) AS n FROM operations WHERE state IN ('accepted', 'running')"
    )
    return int(rows[0]["n"]) if rows else 0


def _done_creates(journal: Journal) -> list[dict[str, Any]]:
    return journal.query(
        "SELECT resource_id, state FROM operations WHERE action = 'create_volume'"
    )


def _depth(broker_url: str, queue: str) -> int:
    with kombu.Connection(broker_url) as conn:
        return int(conn.default_channel.queue_declare(queue, passive=True)[1])


def _flood(api: VolumeAPI, server: str, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    for volume_id in ids:
        api.create_volume({"id": volume_id, "size": 1, "host": server})
    return ids


def _all_done_once(journal: Journal, ids: list[str], timeout: float) -> None:
    wanted = set(ids)

    def finished() -> bool:
        rows = [r for r in _done_creates(journal) if r["resource_id"] in wanted]
        return len(rows) >= len(wanted) and all(r["state"] == "done" for r in rows)

    wait_for(finished, timeout, f"{len(ids)} creates done")
    rows = [r for r in _done_creates(journal) if r["resource_id"] in wanted]
    assert len(rows) == len(wanted), "a create was journaled twice"
    statuses = {v["status"] for k, v in journal.volumes().items() if k in wanted}
    assert statuses == {"available"}


class _Sampler(threading.Thread):
    """Samples the queue depth, the worker's unfinished journal entries and
    its RSS while a flood drains."""

    def __init__(self, worker: Worker, queue: str) -> None:
        super().__init__(daemon=True)
        assert worker.proc is not None
        self.process = psutil.Process(worker.proc.pid)
        self.journal = journal_of(worker)
        self.queue = queue
        self.depths: list[int] = []
        self.unfinished: list[int] = []
        self.rss: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.1):
            self.depths.append(_depth(BROKER_URL, self.queue))
            self.unfinished.append(_unfinished(self.journal))
            self.rss.append(self.process.memory_info().rss / MiB)


@pytest.fixture
def slow(
    make_worker: Callable[..., Worker], client: Callable[[Worker], VolumeAPI]
) -> Iterator[tuple[Worker, VolumeAPI, str]]:
    """A running worker on the slow backend, its client and its server."""
    worker = make_worker(
        {BACKEND: SLOW},
        defaults=SLOW_DEFAULTS,
        extra={"metrics": {"listen": "127.0.0.1:0"}},
    )
    worker.start().wait_ready()
    yield worker, client(worker), worker.server(BACKEND)
    assert worker.stop() == 0


def test_a_flood_waits_on_the_broker_and_none_is_lost(
    slow: tuple[Worker, VolumeAPI, str],
) -> None:
    worker, api, server = slow
    assert worker.proc is not None
    idle = psutil.Process(worker.proc.pid).memory_info().rss / MiB
    sampler = _Sampler(worker, f"{worker.topic}.{server}")
    sampler.start()
    ids = _flood(api, server, 3000)
    _all_done_once(journal_of(worker), ids, timeout=240)
    sampler.halt.set()
    sampler.join()
    print(
        f"flood of {len(ids)}: deepest queue {max(sampler.depths)}, most "
        f"unfinished in the journal {max(sampler.unfinished)}, RSS idle "
        f"{idle:.1f} MiB, peak {max(sampler.rss):.1f} MiB"
    )
    assert max(sampler.depths) > len(ids) // 2, "the backlog was not on the broker"
    assert max(sampler.unfinished) <= LIMIT
    assert max(sampler.rss) - idle < 40
    # operators see the intake held back, and for how long
    found = scrape(metrics_url(worker))
    assert found.value("volworker_intake_stalls_total", backend=BACKEND) >= 1
    stalled = found.value("volworker_intake_stalled_seconds_total", backend=BACKEND)
    assert stalled > 0


def test_a_call_behind_a_backlog_keeps_its_place_or_expires(
    slow: tuple[Worker, VolumeAPI, str],
) -> None:
    worker, api, server = slow
    volume = {"id": str(uuid.uuid4()), "size": 1, "host": server}
    api.create_volume(volume)
    wait_for(
        lambda: api.get_volume(server, volume["id"])["status"] == "available",
        30,
        "the volume",
    )
    ids = _flood(api, server, 1500)
    # Behind 1,500 casts at about 200 a second: the caller gives up first,
    # and the broker drops the call when its time is up, so the attach the
    # caller abandoned never happens.
    began = time.monotonic()
    with pytest.raises(oslo_messaging.MessagingTimeout):
        api._call(
            server,
            "initialize_connection",
            timeout=2,
            volume=volume,
            connector={"host": "abandoned"},
        )
    assert time.monotonic() - began < 5
    # A call with time enough is answered once the casts ahead are in.
    assert api.get_volume(server, ids[-1])["status"] in ("creating", "available")
    _all_done_once(journal_of(worker), ids, timeout=120)
    assert api.get_volume(server, volume["id"])["status"] == "available"
    attaches = journal_of(worker).query(
        "SELECT seq FROM operations WHERE action = 'initialize_connection'"
    )
    assert attaches == []


def test_a_backlog_survives_a_broker_restart(
    tmp_path: pathlib.Path,
    private_broker: PrivateBroker,
    make_worker: Callable[..., Worker],
) -> None:
    """The defaults only: durable queues on the worker and on the client."""
    worker = make_worker(
        {BACKEND: {**SLOW, "fake_latency": 0.05}},
        defaults={**SLOW_DEFAULTS, "transport_url": private_broker.url},
    )
    worker.start().wait_ready()
    api = VolumeAPI.from_url(private_broker.url, topic=worker.topic, timeout=30)
    server = worker.server(BACKEND)
    queue = f"{worker.topic}.{server}"
    try:
        ids = _flood(api, server, 300)
        journal = journal_of(worker)
        wait_for(lambda: len(_done_creates(journal)) >= 10, 60, "the drain begun")
        waiting = _depth(private_broker.amqp_url, queue)
        assert waiting > 100, "the backlog should wait on the broker"
        private_broker.shutdown()
        private_broker.start()
        _all_done_once(journal, ids, timeout=180)
        print(f"{waiting} casts waited on the broker through its restart")
        assert not worker.exited()
    finally:
        api.close()
    assert worker.stop() == 0
