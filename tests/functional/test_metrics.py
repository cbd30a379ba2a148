"""A worker's /metrics scraped over HTTP while it works: counters move with
what was sent, histograms fill, the backlog gauges rise under load and
return to zero when the worker is idle."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.functional.conftest import new_volume
from volworker import exception
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications, Reports
from volworker.testing.metrics import Scrape, metrics_url, scrape
from volworker.testing.worker import Worker

CREATES = 120
SLOTS = 4
LATENCY = 0.02
GIB = 1024**3


class Watcher:
    """Scrapes every few milliseconds on a thread and keeps the peaks."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.peaks: dict[str, float] = {}
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            found = scrape(self.url)
            self.scrapes += 1
            for name in (
                "volworker_operations_waiting",
                "volworker_operations_running",
                "volworker_operation_oldest_waiting_seconds",
                "volworker_journal_operations",
            ):
                self.peaks[name] = max(self.peaks.get(name, 0.0), found.value(name))
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _idle(url: str, timeout: float = 30) -> Scrape:
    """The first scrape with nothing waiting, running or unfinished."""
    deadline = time.monotonic() + timeout
    while True:
        found = scrape(url)
        busy = sum(
            found.value(name)
            for name in (
                "volworker_operations_waiting",
                "volworker_operations_running",
                "volworker_journal_operations",
            )
        )
        if busy == 0:
            return found
        assert time.monotonic() < deadline, found.text
        time.sleep(0.1)


def _histogram_filled(found: Scrape, name: str, count: int, **labels: str) -> None:
    buckets = sorted(
        (float(have["le"]), value)
        for sample, have, value in found.samples
        if sample == f"{name}_bucket"
        and all(have.get(k) == v for k, v in labels.items())
    )
    assert buckets[-1] == (float("inf"), count)
    assert found.value(f"{name}_count", **labels) == count
    counts = [value for _, value in buckets]
    assert counts == sorted(counts)  # cumulative
    # every create took longer than the smallest bucket, none the largest
    assert counts[0] == 0 and counts[-2] == count


def _send(api: VolumeAPI, worker: Worker, events: Notifications) -> dict[str, Any]:
    """The load: creates, failing extends, deletes of unknown volumes,
    calls that answer and calls that fail, one malformed cast."""
    server = worker.server("b1")
    volumes = [new_volume(worker, "b1") for _ in range(CREATES)]
    for volume in volumes:
        api.create_volume(volume)
    for volume in volumes:
        events.wait_event("volume.create.end", volume["id"], timeout=120)
    for volume in volumes[:5]:
        api.extend_volume(volume, 2)
    unknown = [new_volume(worker, "b1") for _ in range(3)]
    for volume in unknown:
        api.delete_volume(volume)
    for volume in volumes[:10]:
        assert api.get_volume(server, volume["id"])["id"] == volume["id"]
    for volume in unknown[:2]:
        with pytest.raises(exception.VolumeNotFound):
            api.get_volume(server, volume["id"])
    api.create_volume({"id": str(uuid.uuid4()), "size": -1, "host": server})
    for volume in volumes[:5]:
        events.wait_event("volume.extend.error", volume["id"])
    for volume in unknown:
        events.wait_event("volume.delete.error", volume["id"])
    return {"messages": CREATES + 5 + 3 + 10 + 2 + 1}


def test_a_scrape_under_load_agrees_with_what_was_sent(
    scheduler: tuple[str, Reports],
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[[Worker], Notifications],
) -> None:
    topic, reports = scheduler
    worker = make_worker(
        {
            "b1": {
                "volume_driver": "fake",
                "fake_method_latency": f"create_volume:{LATENCY}",
                "fake_failures": "extend_volume:VolumeBackendAPIException",
            }
        },
        defaults={
            "max_concurrent_operations": SLOTS,
            # room for a backlog the gauges can show: by default the intake
            # holds twice the slots, running and waiting together
            "intake_limit": 4 * SLOTS,
            "scheduler_topic": topic,
            "backend_stats_polling_interval": 1,
        },
        extra={"metrics": {"listen": "127.0.0.1:0"}},
    ).start()
    worker.wait_ready()
    url = metrics_url(worker)
    api, events = client(worker), notifications(worker)
    before = scrape(url)
    assert before.value("volworker_backend_ready", backend="b1") == 1
    assert before.value("volworker_operations_total") == 0

    watcher = Watcher(url)
    try:
        sent = _send(api, worker, events)
    finally:
        watcher.stop()
    assert watcher.scrapes >= 5
    # under load: a backlog in line, never more running than the slots
    assert watcher.peaks["volworker_operations_waiting"] > SLOTS
    assert watcher.peaks["volworker_operations_running"] == SLOTS
    assert watcher.peaks["volworker_operation_oldest_waiting_seconds"] > LATENCY
    assert watcher.peaks["volworker_journal_operations"] > 0

    found = _idle(url)
    ops = "volworker_operations_total"
    assert found.value(ops, action="create_volume", outcome="done") == CREATES
    assert found.value(ops, action="extend_volume", outcome="failed") == 5
    assert found.value(ops, action="delete_volume", outcome="refused") == 3
    assert found.value(ops) == CREATES + 5 + 3
    _histogram_filled(
        found, "volworker_operation_duration_seconds", CREATES, action="create_volume"
    )
    assert (
        found.value("volworker_operation_duration_seconds_sum", action="create_volume")
        >= CREATES * LATENCY
    )
    _histogram_filled(
        found, "volworker_driver_call_duration_seconds", CREATES, method="create_volume"
    )
    assert found.value("volworker_intake_messages_total") == sent["messages"]
    calls = "volworker_rpc_calls_total"
    assert found.value(calls, method="get_volume", error="none") == 10
    assert found.value(calls, method="get_volume", error="VolumeNotFound") == 2
    refused = "volworker_rpc_refused_casts_total"
    assert found.value(refused, method="create_volume", error="InvalidInput") == 1
    for gauge in (
        "volworker_operations_waiting",
        "volworker_operations_running",
        "volworker_operation_oldest_waiting_seconds",
        "volworker_journal_operations",
        "volworker_exports_open",
    ):
        assert found.value(gauge) == 0, gauge

    # what the scheduler sees, once the next report is out
    pool = {"backend": "b1", "pool": "fake"}
    deadline = time.monotonic() + 30
    while scrape(url).value("volworker_pool_volumes", **pool) != CREATES:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    found = scrape(url)
    assert found.value("volworker_pool_allocated_capacity_bytes", **pool) == (
        CREATES * GIB
    )
    assert found.value("volworker_pool_total_capacity_bytes", **pool) == 1000 * GIB
    assert found.value("volworker_capability_reports_total") >= 2
    assert found.value("volworker_capability_report_age_seconds") < 10
    assert len(reports.all()) >= 2
    assert worker.stop() == 0


def test_exports_and_recovery_show(
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[[Worker], Notifications],
) -> None:
    worker = make_worker(
        {"b1": {"volume_driver": "fake", "fake_method_latency": "create_volume:2"}},
        extra={"metrics": {"listen": "127.0.0.1:0"}},
    ).start()
    worker.wait_ready()
    api, events = client(worker), notifications(worker)
    server = worker.server("b1")
    attached = new_volume(worker, "b1")
    api.create_volume(attached)
    events.wait_event("volume.create.end", attached["id"])
    api.initialize_connection(attached, {"host": "node-1"})
    assert scrape(metrics_url(worker)).value("volworker_exports_open") == 1
    api.terminate_connection(attached, {"host": "node-1"})
    assert scrape(metrics_url(worker)).value("volworker_exports_open") == 0

    # killed while creating: the next start redoes the creates
    volumes = [new_volume(worker, "b1") for _ in range(3)]
    for volume in volumes:
        api.create_volume(volume)
    events.wait_event("volume.create.start", volumes[0]["id"])
    worker.kill()
    worker.start().wait_ready()
    found = scrape(metrics_url(worker))
    assert found.value("volworker_recovered_operations_total", fate="redo") >= 1
    for volume in volumes:
        events.wait_event("volume.create.end", volume["id"], timeout=60)
    assert api.get_volume(server, volumes[0]["id"])["status"] == "available"
    assert worker.stop() == 0
