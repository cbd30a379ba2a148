"""Figures read when Prometheus scrapes, so that the hot path counts nothing
for them: each backend's backlog and running operations (from its line on
the event loop), its journal and exports (a query on the state store), its
pools (the latest capability report), the age of its last report, and
whether it is ready (:mod:`volworker.health`).

A scrape asks the loop and the store once each, and waits for each at most
``timeout`` seconds: a loop or store that does not answer leaves its
figures out of that scrape (and fails ``/healthz``) instead of hanging it.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from volworker.health import Health, Verdict, ask_loop
from volworker.metrics.recorder import Recorder
from volworker.state import figures
from volworker.state.store import Store

__all__ = ["Live", "Source", "families"]

LOG = logging.getLogger(__name__)

GIB = 1024**3


class _Line(Protocol):
    def load(self) -> tuple[int, int, float | None]: ...


@dataclass(frozen=True)
class Source:
    """Where one backend's live figures come from."""

    backend: str
    ordering: _Line  # volworker.ordering.Ordering, read on the loop
    store: Store
    service: str
    owner: str
    capabilities: Callable[[], dict[str, Any]]
    recorder: Recorder
    report_interval: float


def _load(ordering: _Line) -> tuple[int, int, float]:
    """Waiting, running, and the oldest waiting one's age (0 if none)."""
    waiting, running, since = ordering.load()
    return waiting, running, 0.0 if since is None else time.monotonic() - since


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=["backend", *labels])


def families() -> dict[str, GaugeMetricFamily]:
    """The scrape-time families, empty, by short name."""
    return {
        "waiting": _gauge(
            "volworker_operations_waiting",
            "Operations in line for their volumes' turn or a free slot.",
        ),
        "running": _gauge(
            "volworker_operations_running",
            "Operations running (max_concurrent_operations at most).",
        ),
        "oldest": _gauge(
            "volworker_operation_oldest_waiting_seconds",
            "How long the operation that has waited longest has been in line "
            "(0: none waits).",
        ),
        "journal": _gauge(
            "volworker_journal_operations",
            "Unfinished operations this worker holds in its journal, by state "
            "(accepted: not begun; a create counts as accepted until it ends).",
            ["state"],
        ),
        "exports": _gauge(
            "volworker_exports_open", "Attachments this worker serves (not lost)."
        ),
        "ready": _gauge(
            "volworker_backend_ready",
            "1 when the backend is set up, consuming and healthy (/healthz).",
        ),
        "report_age": _gauge(
            "volworker_capability_report_age_seconds",
            "Age of the figures in the last capability report published.",
        ),
        "interval": _gauge(
            "volworker_capability_report_interval_seconds",
            "backend_stats_polling_interval: how often reports should go out.",
        ),
        "total": _gauge(
            "volworker_pool_total_capacity_bytes",
            "A pool's total capacity as the scheduler sees it.",
            ["pool"],
        ),
        "free": _gauge(
            "volworker_pool_free_capacity_bytes",
            "A pool's free capacity as the scheduler sees it (+Inf: infinite).",
            ["pool"],
        ),
        "allocated": _gauge(
            "volworker_pool_allocated_capacity_bytes",
            "What this worker placed in a pool (allocated_capacity_gb).",
            ["pool"],
        ),
        "volumes": _gauge(
            "volworker_pool_volumes", "Volumes in a pool (total_volumes).", ["pool"]
        ),
    }


def _capacity(value: Any) -> float | None:
    if value == "infinite":
        return float("inf")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) * GIB
    return None  # "unknown"


class Live(Collector):
    """The scrape-time figures of every backend that serves."""

    def __init__(self, health: Health, timeout: float = 2.0) -> None:
        self._health = health
        self._timeout = timeout
        self._sources: dict[str, Source] = {}

    def add(self, source: Source) -> None:
        self._sources[source.backend] = source

    def describe(self) -> Iterator[Metric]:
        # Without this, registering would scrape once to learn the names,
        # and on the loop's own thread the scrape would wait for itself.
        yield from families().values()

    def collect(self) -> Iterator[Metric]:
        found = families()
        sources = list(self._sources.values())
        journals = {s.backend: self._journal(s) for s in sources}
        verdict, loads = self._on_loop(sources)
        now = time.time()
        for source in sources:
            name = source.backend
            if name in loads:
                waiting, running, oldest = loads[name]
                found["waiting"].add_metric([name], waiting)
                found["running"].add_metric([name], running)
                found["oldest"].add_metric([name], oldest)
            ready = verdict.ok and verdict.backends.get(name) == "ready"
            found["ready"].add_metric([name], 1.0 if ready else 0.0)
            found["interval"].add_metric([name], source.report_interval)
            if source.recorder.report_taken is not None:
                age = max(0.0, now - source.recorder.report_taken)
                found["report_age"].add_metric([name], age)
            self._add_journal(found, name, journals[name])
            self._add_pools(found, name, source.capabilities())
        yield from found.values()

    def _on_loop(self, sources: list[Source]) -> tuple[Verdict, dict[str, Any]]:
        def look() -> tuple[Verdict, dict[str, Any]]:
            return (
                self._health.check(),
                {s.backend: _load(s.ordering) for s in sources},
            )

        try:
            return ask_loop(self._health.loop, look, self._timeout)
        except TimeoutError as exc:
            LOG.warning("Metrics: %s", exc)
            return Verdict(False, self._health.phase), {}

    def _journal(self, source: Source) -> concurrent.futures.Future[dict[str, Any]]:
        work = functools.partial(
            figures.journal_and_exports, service=source.service, owner=source.owner
        )
        try:
            return source.store.submit(work)
        except Exception as exc:  # a store that is not running
            failed: concurrent.futures.Future[dict[str, Any]] = (
                concurrent.futures.Future()
            )
            failed.set_exception(exc)
            return failed

    def _add_journal(
        self,
        found: dict[str, GaugeMetricFamily],
        name: str,
        pending: concurrent.futures.Future[dict[str, Any]],
    ) -> None:
        try:
            counts = pending.result(self._timeout)
        except Exception as exc:
            pending.cancel()  # the store skips it if it has not begun
            LOG.warning("Metrics: the journal of %s did not answer: %s", name, exc)
            return
        for state in ("accepted", "running"):
            found["journal"].add_metric([name, state], counts[state])
        found["exports"].add_metric([name], counts["exports"])

    @staticmethod
    def _add_pools(
        found: dict[str, GaugeMetricFamily], name: str, report: dict[str, Any]
    ) -> None:
        for pool in report.get("pools") or ():
            labels = [name, str(pool.get("pool_name"))]
            for key, field in (
                ("total", "total_capacity_gb"),
                ("free", "free_capacity_gb"),
            ):
                value = _capacity(pool.get(field))
                if value is not None:
                    found[key].add_metric(labels, value)
            found["allocated"].add_metric(
                labels, float(pool.get("allocated_capacity_gb", 0)) * GIB
            )
            found["volumes"].add_metric(labels, float(pool.get("total_volumes", 0)))
