"""Scrape-time figures: the line read on the loop, the journal and exports
read from a real store, pools as the scheduler sees them; a loop or store
that does not answer leaves its figures out instead of hanging the scrape."""

from __future__ import annotations

import asyncio
import datetime
import functools
import time
from typing import Any

from volworker.health import Health
from volworker.metrics import BackendMetrics
from volworker.metrics.live import Live, Source
from volworker.ordering import Ordering
from volworker.state import Store, operations, records

SERVICE, OWNER = "h@b1", "h@b1/now"
GIB = 1024**3


def _journal(store: Store, state: str, owner: str = OWNER) -> None:
    store.submit(
        functools.partial(
            operations.insert,
            service=SERVICE,
            owner=owner,
            action="create_volume",
            resource_type="volume",
            resource_id="v",
            state=state,
        )
    ).result(10)


def _samples(live: Live) -> dict[tuple[str, tuple[str, ...]], float]:
    return {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in live.collect()
        for sample in family.samples
    }


def _live(store: Store, ordering: Ordering, report: dict[str, Any]) -> Live:
    health = Health(3, lambda: store.running)
    health.watch("b1", consuming=lambda: True, failed_rounds=lambda: 0)
    health.serving("Serving b1")
    recorder = BackendMetrics("live-b1")
    taken = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=90)
    recorder.report_sent(taken.isoformat())
    live = Live(health, timeout=1.0)
    live.add(
        Source("b1", ordering, store, SERVICE, OWNER, lambda: report, recorder, 60)
    )
    return live


async def test_a_scrape_reads_the_line_the_journal_and_the_pools(store: Store) -> None:
    ordering = Ordering(1)
    running = ordering.enqueue({"v1"})
    await running.__aenter__()
    waiting = [ordering.enqueue({"v1"}), ordering.enqueue({"v2"})]
    waiting[0].since -= 30  # has waited half a minute
    for state in ("accepted", "accepted", "running", "done"):
        _journal(store, state)
    _journal(store, "accepted", owner="h@b1/before")  # not ours any more
    await store.run(
        functools.partial(
            records.attach,
            volume_id="v1",
            connector={"host": "node"},
            connection_info={},
            served_by=OWNER,
        )
    )
    pools = {
        "pools": [
            {
                "pool_name": "a",
                "total_capacity_gb": 10,
                "free_capacity_gb": 4,
                "allocated_capacity_gb": 6,
                "total_volumes": 2,
            },
            {
                "pool_name": "b",
                "total_capacity_gb": "unknown",
                "free_capacity_gb": "infinite",
                "allocated_capacity_gb": 0,
                "total_volumes": 0,
            },
        ]
    }
    live = _live(store, ordering, pools)
    found = await asyncio.to_thread(_samples, live)
    assert found[("volworker_operations_waiting", ("b1",))] == 2
    assert found[("volworker_operations_running", ("b1",))] == 1
    assert 30 <= found[("volworker_operation_oldest_waiting_seconds", ("b1",))] < 40
    assert found[("volworker_journal_operations", ("b1", "accepted"))] == 2
    assert found[("volworker_journal_operations", ("b1", "running"))] == 1
    assert found[("volworker_exports_open", ("b1",))] == 1
    assert found[("volworker_backend_ready", ("b1",))] == 1
    assert 90 <= found[("volworker_capability_report_age_seconds", ("b1",))] < 100
    assert found[("volworker_pool_free_capacity_bytes", ("b1", "a"))] == 4 * GIB
    assert found[("volworker_pool_free_capacity_bytes", ("b1", "b"))] == float("inf")
    assert ("volworker_pool_total_capacity_bytes", ("b1", "b")) not in found
    assert found[("volworker_pool_allocated_capacity_bytes", ("b1", "a"))] == 6 * GIB
    assert found[("volworker_pool_volumes", ("b1", "a"))] == 2

    running.release()
    for ticket in waiting:
        ticket.release()
    found = await asyncio.to_thread(_samples, live)
    assert found[("volworker_operations_waiting", ("b1",))] == 0
    assert found[("volworker_operation_oldest_waiting_seconds", ("b1",))] == 0


async def test_a_busy_loop_or_a_stopped_store_leaves_figures_out(
    store: Store,
) -> None:
    live = _live(store, Ordering(1), {})
    store.stop(timeout=30)
    scraping = asyncio.get_running_loop().run_in_executor(None, _samples, live)
    time.sleep(1.5)  # the loop is busy elsewhere: the scrape does not wait
    found = await scraping
    assert ("volworker_operations_waiting", ("b1",)) not in found
    assert ("volworker_journal_operations", ("b1", "accepted")) not in found
    assert found[("volworker_backend_ready", ("b1",))] == 0
    assert found[("volworker_capability_report_interval_seconds", ("b1",))] == 60


async def test_registering_does_not_scrape(store: Store) -> None:
    """A registry learns the names from describe(): a scrape from the loop's
    own thread would wait for itself."""
    live = _live(store, Ordering(1), {})
    names = {family.name for family in live.describe()}
    assert {"volworker_operations_waiting", "volworker_backend_ready"} <= names
    assert all(not family.samples for family in live.describe())
