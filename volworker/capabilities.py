"""Capabilities for schedulers: one publisher per backend, on the event loop.

When. The first report goes out as the backend starts consuming (before the
process says READY=1), then every ``backend_stats_polling_interval`` seconds,
and when a ``publish_service_capabilities`` fanout asks; requests that
arrive together give one report.

What. The driver's ``get_volume_stats`` checked by :mod:`volworker.capability_report`,
with each pool's ``allocated_capacity_gb`` and ``total_volumes`` counted from
the worker's state when the report is sent. A polling round asks the driver
(``refresh=True``); a requested report reuses the driver's latest good
figures with fresh counts, so a create or delete shows in the next report
without refreshing the driver.

Failures. The driver call runs on the worker's thread pool with
``stats_timeout``, and never twice at once: a round that finds the previous
call still running waits for that call instead of starting another. A round
whose call fails, times out or returns an invalid report sends nothing and
logs an error. ``timestamp`` is always when the driver's figures were taken,
so old figures are never sent as fresh: a requested report during a failure
repeats the last good figures under their old timestamp, and a scheduler
sees their age (and marks the backend stale, see volworker.scheduler).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import oslo_messaging
from oslo_config import cfg

from volworker import capability_report, exception
from volworker.driver import Feature, VolumeDriver
from volworker.metrics import OFF, Recorder
from volworker.senders import Senders
from volworker.state import records
from volworker.state.store import Store

__all__ = ["Publisher", "capabilities_opts", "register_opts"]

LOG = logging.getLogger(__name__)

capabilities_opts = [
    cfg.IntOpt(
        "backend_stats_polling_interval",
        default=60,
        min=1,
        help="Seconds between two capability reports of a backend (each asks "
        "the driver for fresh figures).",
    ),
    cfg.StrOpt(
        "scheduler_topic",
        default="volworker-scheduler",
        help="The topic whose fanout receives the capability reports "
        "(update_service_capabilities).",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(capabilities_opts)


@dataclass(frozen=True)
class Report:
    """A checked driver report and when its figures were taken."""

    capabilities: dict[str, Any]
    taken: datetime.datetime


class Publisher:
    """Collects one backend's capabilities and publishes them."""

    def __init__(  # noqa: PLR0913 - the publisher's collaborators
        self,
        conf: cfg.ConfigOpts,
        *,
        driver: VolumeDriver,
        host: str,
        cluster: str | None,
        store: Store,
        executor: concurrent.futures.Executor,
        senders: Senders,
        transport: oslo_messaging.Transport,
        on_report: Callable[[dict[str, Any]], None] = lambda caps: None,
        metrics: Recorder = OFF,
    ) -> None:
        self.host = host
        self.cluster = cluster
        self.conf = conf
        #: told every composed report (the pools requests may name)
        self._on_report = on_report
        self._driver = driver
        self._service = cluster or host
        self._store = store
        self._executor = executor
        self._senders = senders
        self._topic = conf.scheduler_topic
        self._nobody_listens = False
        self._client = oslo_messaging.get_rpc_client(
            transport, oslo_messaging.Target(topic=conf.scheduler_topic)
        ).prepare(fanout=True)
        self._defaults = {
            # What the driver declares, unless its report says otherwise.
            "consistent_group_snapshot_enabled": driver.supports(
                Feature.CONSISTENT_GROUP_SNAPSHOT
            ),
            "reserved_percentage": driver.configuration.reserved_percentage,
            "max_over_subscription_ratio": (
                driver.configuration.max_over_subscription_ratio
            ),
        }
        self._report: Report | None = None
        self._latest: dict[str, Any] = {}
        self._call: asyncio.Future[Report] | None = None
        self._call_started = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[str, Any] | None = None
        self._pending_lock = threading.Lock()
        self._metrics = metrics
        #: polling rounds in a row that got no usable stats (for /healthz)
        self.failed_rounds = 0

    # -- life -------------------------------------------------------------

    async def first_report(self) -> dict[str, Any]:
        """The driver's first checked report, composed with the worker's
        counts (not published yet); raises when the driver cannot give one."""
        self._report = await self._collect()
        return await self._compose(self._report)

    async def start(self) -> None:
        """Send the first report now, then keep reporting until stop()."""
        interval = float(self.conf.backend_stats_polling_interval)
        await self._round(self._publish)
        self._task = asyncio.get_running_loop().create_task(
            self._run(interval), name=f"capabilities-{self.host}"
        )

    async def stop(self) -> None:
        """Stop at once; a driver call still running is left to finish."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def request(self) -> None:
        """Publish soon (a scheduler asked); call on the event loop."""
        self._wake.set()

    def latest(self) -> dict[str, Any]:
        """The capabilities last composed, published or about to be."""
        return self._latest

    async def discover(self) -> dict[str, Any]:
        """Fresh figures from the driver, with fresh counts (not published)."""
        self._report = await self._collect()
        return await self._compose(self._report)

    # -- rounds -----------------------------------------------------------

    async def _run(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        next_poll = loop.time() + interval
        while True:
            if not self._wake.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), next_poll - loop.time())
            if self._wake.is_set():
                # Before any poll that is due, so rounds that overrun
                # (a hung driver) never starve a scheduler's request
                await self._round(self._publish)
                continue
            started = loop.time()
            await self._round(self._poll)
            took = loop.time() - started
            if took > interval:
                LOG.warning(
                    "Capabilities of %s took %.1fs, longer than "
                    "backend_stats_polling_interval (%gs)",
                    self.host,
                    took,
                    interval,
                )
            next_poll = started + interval

    async def _round(self, work: Callable[[], Any]) -> None:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            LOG.exception("Capabilities of %s: the round failed", self.host)

    async def _poll(self) -> None:
        try:
            self._report = await self._collect()
        except exception.VolworkerError as exc:
            error = exc
            self.failed_rounds += 1
            self._metrics.stats_failed()
        else:
            self.failed_rounds = 0
            await self._publish()
            return
        # Logged outside the except block, or oslo.log repeats the error
        assert self._report is not None
        LOG.error(
            "Capabilities of %s not published: %s (the last good report was "
            "taken %.0fs ago)",
            self.host,
            error,
            (_utcnow() - self._report.taken).total_seconds(),
        )

    async def _publish(self) -> None:
        self._wake.clear()
        assert self._report is not None
        report = self._report
        capabilities = await self._compose(report)
        with self._pending_lock:
            self._pending = {
                "service_name": "volume",
                "host": self.host,
                "capabilities": capabilities,
                "cluster_name": self.cluster,
                "timestamp": report.taken.isoformat(),
            }
        self._senders.send(f"capabilities-{self.host}", self._send_pending)

    async def _compose(self, report: Report) -> dict[str, Any]:
        allocations = await self._store.run(
            functools.partial(records.pool_allocations, service=self._service)
        )
        capabilities = capability_report.with_allocations(
            report.capabilities, allocations
        )
        self._latest = capabilities
        self._on_report(capabilities)
        return capabilities

    # -- the driver call and the send -------------------------------------

    async def _collect(self) -> Report:
        loop = asyncio.get_running_loop()
        if self._call is None:
            call = loop.run_in_executor(self._executor, self._checked_stats)
            self._call, self._call_started = call, loop.time()
            call.add_done_callback(self._call_done)
        else:
            LOG.warning(
                "Backend %s: get_volume_stats is still running after %.0fs; "
                "waiting for it instead of calling it again",
                self.host,
                loop.time() - self._call_started,
            )
        timeout = float(self.conf.stats_timeout)
        try:
            return await asyncio.wait_for(asyncio.shield(self._call), timeout)
        except TimeoutError:
            raise exception.VolumeBackendAPIException(
                data=f"get_volume_stats did not answer within {timeout:g}s"
            ) from None
        except exception.VolworkerError:
            raise
        except Exception as exc:
            raise exception.VolumeBackendAPIException(
                data=f"get_volume_stats: {type(exc).__name__}: {exc}"
            ) from exc

    def _checked_stats(self) -> Report:
        """On the pool: the driver's report, checked, with its time."""
        started = time.monotonic()
        try:
            raw = self._driver.get_volume_stats(True)
        finally:
            self._metrics.driver_call("get_volume_stats", started)
        return Report(capability_report.check(raw, self._defaults), _utcnow())

    def _call_done(self, call: asyncio.Future[Report]) -> None:
        if self._call is call:
            self._call = None
        if not call.cancelled():
            call.exception()  # Retrieved, also when nobody waited

    def _send_pending(self) -> None:
        """On an senders thread: send the newest report not yet sent."""
        with self._pending_lock:
            kwargs, self._pending = self._pending, None
        if kwargs is not None:
            ctxt = {"request_id": f"req-{uuid.uuid4()}"}
            try:
                self._client.cast(ctxt, "update_service_capabilities", **kwargs)
            except oslo_messaging.MessageDeliveryFailure as exc:
                # The fanout exchange exists once a scheduler listens;
                # until then there is nobody to tell, which is no error.
                log = LOG.debug if self._nobody_listens else LOG.info
                log("No scheduler listens on %s yet: %s", self._topic, exc)
                self._nobody_listens = True
                return
            self._nobody_listens = False
            self._metrics.report_sent(kwargs["timestamp"])
            LOG.debug(
                "Published the capabilities of %s (%d pools, taken %s)",
                self.host,
                len(kwargs["capabilities"]["pools"]),
                kwargs["timestamp"],
            )


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
