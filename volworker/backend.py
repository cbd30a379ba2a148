"""One served backend: its driver, manager and RPC intake, brought up in the
order that makes "ready" mean ready.

load the driver → ``do_setup`` → ``check_for_setup_error`` (transient
failures retried with backoff) → learn the pools → recover the journal →
consume the backend's queues.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime
import functools
import logging
from collections.abc import Callable
from typing import Any

import oslo_messaging
import tenacity
from oslo_config import cfg

from volworker import exception, systemd
from volworker.capabilities import Publisher
from volworker.context import RequestContext
from volworker.coordination import Coordination
from volworker.driver import VolumeDriver, loader
from volworker.health import Health
from volworker.image import ImageService
from volworker.manager.backlog import default_limit
from volworker.manager.core import Manager
from volworker.manager.request import Request
from volworker.manager.runtime import Runtime
from volworker.manager.takeover import Watch
from volworker.metrics.live import Source
from volworker.metrics.process import Metrics
from volworker.metrics.recorder import Recorder
from volworker.notify import Notifications
from volworker.publisher import BatchPublisher
from volworker.rpc import queues
from volworker.rpc.dispatcher import Dispatcher
from volworker.rpc.endpoint import METHODS, Endpoint
from volworker.rpc.intake import open_listener
from volworker.rpc.rpcapi import VolumeAPI
from volworker.rpc.server import RequestServer
from volworker.rpc.validate import BackendIdentity
from volworker.senders import Senders
from volworker.state.store import Store

__all__ = ["Backend", "Shared", "backend_service_opts", "register_opts"]

LOG = logging.getLogger(__name__)

#: Seconds a member waits for the member it hands an attachment's call to.
FORWARD_TIMEOUT = 60.0

backend_service_opts = [
    cfg.StrOpt(
        "volume_topic",
        default="volworker",
        help="The RPC topic the worker consumes; each backend also consumes "
        "<topic>.<host>@<backend>.",
    ),
    cfg.IntOpt(
        "max_concurrent_operations",
        default=32,
        min=1,
        help="Operations on different volumes that may run at once, per backend.",
    ),
    cfg.IntOpt(
        "intake_limit",
        default=0,
        min=0,
        help="Accepted operations a backend holds (journaled, waiting for "
        "their turn or running) before it stops taking casts off its queues; "
        "the rest wait on the broker, and a flood never fills the worker's "
        "memory. It is also the broker's prefetch per queue (oslo.messaging's "
        "rabbit_qos_prefetch_count does not apply to the worker's queues). 0: "
        "twice max_concurrent_operations.",
    ),
    cfg.StrOpt(
        "rpc_intake",
        default="kombu",
        choices=[
            (
                "kombu",
                "volworker's own listener on py-amqp: oslo's wire format and "
                "queues, a third of the CPU per request (RabbitMQ with classic "
                "queues and no TLS; otherwise oslo's listener, with a warning)",
            ),
            (
                "oslo",
                "oslo.messaging's AMQP listener, acknowledging a cast only "
                "once it is journaled",
            ),
        ],
        help="What takes requests off the backends' queues.",
    ),
    cfg.IntOpt(
        "max_volume_size_gb",
        default=65536,
        min=1,
        help="The largest volume size, in GiB, a request may ask for.",
    ),
    cfg.IntOpt(
        "setup_retry_attempts",
        default=6,
        min=1,
        help="How many times driver setup is tried when the backend is "
        "unavailable (BackendUnavailable) before the backend is given up.",
    ),
    cfg.FloatOpt(
        "setup_retry_max_delay",
        default=30.0,
        min=0.0,
        help="The longest wait, in seconds, between two setup attempts; the "
        "wait doubles from 1 s up to this.",
    ),
    cfg.FloatOpt(
        "stats_timeout",
        default=30.0,
        min=1.0,
        help="Seconds a driver's get_volume_stats may take before the report "
        "is given up.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(backend_service_opts)


class Shared:
    """What the backends of one process share."""

    def __init__(  # noqa: PLR0913 - what the backends share
        self,
        conf: cfg.ConfigOpts,
        *,
        incarnation: str,
        transport: oslo_messaging.Transport,
        notification_transport: oslo_messaging.Transport,
        store: Store,
        coordination: Coordination,
        senders: Senders,
        publisher: BatchPublisher | None,
        executor: concurrent.futures.ThreadPoolExecutor,
        image_service: ImageService,
        health: Health,
        metrics: Metrics,
    ) -> None:
        self.conf = conf
        self.incarnation = incarnation
        self.transport = transport
        self.notification_transport = notification_transport
        self.store = store
        self.coordination = coordination
        self.senders = senders
        self.publisher = publisher
        self.executor = executor
        self.image_service = image_service
        self.health = health
        self.metrics = metrics


class Backend:
    """Brings one backend up and down."""

    def __init__(self, name: str, shared: Shared) -> None:
        conf = shared.conf
        self.name = name
        self.shared = shared
        self.host = f"{conf.host}@{name}"
        self.cluster = f"{conf.cluster}@{name}" if conf.cluster else None
        #: the service that owns this backend's records: the cluster if any
        self.service = self.cluster or self.host
        self.driver: VolumeDriver | None = None
        self.manager: Manager | None = None
        self.server: RequestServer | None = None
        self.publisher: Publisher | None = None
        self.metrics: Recorder = shared.metrics.recorder(name, METHODS)

    async def _blocking(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.shared.executor, fn, *args)

    def _setup_driver(self, driver: VolumeDriver) -> None:
        driver.do_setup(RequestContext.admin())
        driver.check_for_setup_error()

    def _report_retry(self, state: tenacity.RetryCallState) -> None:
        wait = state.next_action.sleep if state.next_action else 0.0
        cause = state.outcome.exception() if state.outcome else ""
        LOG.warning(
            "Backend %s is not available yet (attempt %d): %s",
            self.name,
            state.attempt_number,
            cause,
        )
        # Tell systemd why start-up takes long, and give it the time.
        systemd.notify(
            f"STATUS=Backend {self.name} not available yet (attempt "
            f"{state.attempt_number}), retrying in {wait:.0f}s: {cause}"[:500],
            f"EXTEND_TIMEOUT_USEC={int((wait + 60) * 1_000_000)}",
        )

    async def _setup(self, driver: VolumeDriver) -> None:
        conf = self.shared.conf
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(exception.BackendUnavailable),
            wait=tenacity.wait_exponential(
                multiplier=1, max=conf.setup_retry_max_delay
            ),
            stop=tenacity.stop_after_attempt(conf.setup_retry_attempts),
            before_sleep=self._report_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                self.metrics.setup_attempt()
                await self._blocking(self._setup_driver, driver)

    async def start(self) -> None:
        """Set the backend up and start consuming; raise if it cannot be."""
        conf = self.shared.conf
        shared = self.shared
        if not self.cluster:
            await self._blocking(shared.coordination.claim_service, self.host)
        servers = [self.host] + ([self.cluster] if self.cluster else [])
        intake = default_limit(conf.intake_limit, conf.max_concurrent_operations)
        listen = functools.partial(
            open_listener,
            conf.rpc_intake,
            conf,
            shared.transport,
            conf.volume_topic,
            servers,
            intake,
        )
        server = RequestServer(listen, conf.volume_topic, servers)
        self.server = server
        # The queues exist before setup, so requests sent while the
        # backend is not ready wait in them; nothing is consumed yet.
        await self._blocking(queues.settle, conf, shared.transport)
        await self._blocking(server.open)
        driver = loader.load_driver(
            conf,
            self.name,
            host=conf.host,
            state_path=conf.state_path,
            incarnation=shared.incarnation,
        )
        self.driver = driver
        systemd.notify(f"STATUS=Setting up backend {self.name}")
        await self._setup(driver)
        endpoint = Endpoint(
            BackendIdentity(conf.host, self.name, conf.cluster, ()),
            conf.max_volume_size_gb,
        )
        # A backend whose first stats fail, hang or make no sense is not
        # ready: its pools are unknown, and nothing could be scheduled to it.
        publisher = Publisher(
            conf,
            driver=driver,
            host=self.host,
            cluster=self.cluster,
            store=shared.store,
            executor=shared.executor,
            senders=shared.senders,
            transport=shared.transport,
            on_report=functools.partial(self._on_report, endpoint),
            metrics=self.metrics,
        )
        self.publisher = publisher
        await publisher.first_report()
        owner = driver.configuration.instance
        watch = None
        if self.cluster:
            watch = Watch(
                coordination=shared.coordination,
                store=shared.store,
                executor=shared.executor,
                group=self.cluster,
                service=self.service,
                owner=owner,
            )
            # In the group before anything is recovered or consumed: from
            # now on the others see this member alive.
            await watch.join()
        runtime = Runtime(
            service=self.service,
            owner=owner,
            driver=driver,
            store=shared.store,
            notifications=Notifications(
                shared.notification_transport,
                f"volworker.{self.host}",
                shared.senders,
                shared.publisher,
            ),
            images=shared.image_service,
            executor=shared.executor,
            capabilities=publisher,
            cluster=None if watch is None else watch.view,
            metrics=self.metrics,
        )
        manager = Manager(
            runtime,
            locks=shared.coordination,
            max_concurrent=conf.max_concurrent_operations,
            journal_retention=datetime.timedelta(
                days=conf.database.journal_retention_days
            ),
            member=self.host if self.cluster else None,
            watch=watch,
            forward=self._forwarder() if self.cluster else None,
            intake_limit=intake,
        )
        manager.start()
        self.manager = manager
        recovered = await manager.recover()
        manager.restore_exports()
        if recovered:
            LOG.info(
                "Backend %s: %d journaled operation(s) to finish", self.name, recovered
            )
        dispatcher = Dispatcher(
            endpoint, manager.submit, manager.reject, shared.senders, self.metrics
        )
        await self._blocking(server.start, dispatcher, manager.backlog)
        await publisher.start()
        manager.watch_cluster()
        self._watch(driver, manager, publisher, server)
        LOG.info(
            "Backend %s ready: driver %s %s, pools %s",
            self.name,
            type(driver).__name__,
            driver.VERSION,
            ", ".join(endpoint.ident.pools),
        )

    def _forwarder(self) -> Callable[[str, Request], Any]:
        """How a member hands an attachment's call to the member serving it:
        the same call, sent to that member's own server."""
        conf = self.shared.conf
        api = VolumeAPI(
            self.shared.transport, topic=conf.volume_topic, timeout=FORWARD_TIMEOUT
        )

        def forward(owner: str, request: Request) -> Any:
            server = owner.partition("/")[0]
            volume = dict(request.args["volume"])
            pool = volume["host"].partition("#")[2]
            volume["host"] = f"{server}#{pool}" if pool else server
            ctxt = request.context.to_dict()
            if request.action == "initialize_connection":
                return api.initialize_connection(
                    volume, request.args["connector"], ctxt
                )
            return api.terminate_connection(
                volume, request.args["connector"], request.args["force"], ctxt
            )

        return forward

    def _watch(
        self,
        driver: VolumeDriver,
        manager: Manager,
        publisher: Publisher,
        server: RequestServer,
    ) -> None:
        """Count the backend in for /healthz, the watchdog and the metrics."""
        shared = self.shared
        shared.health.watch(
            self.name,
            consuming=server.consuming,
            failed_rounds=lambda: publisher.failed_rounds,
        )
        self.metrics.describe_driver(type(driver).__name__, driver.VERSION)
        shared.metrics.watch(
            Source(
                backend=self.name,
                ordering=manager.ordering,
                store=shared.store,
                service=self.service,
                owner=manager.runtime.owner,
                capabilities=publisher.latest,
                recorder=self.metrics,
                report_interval=float(shared.conf.backend_stats_polling_interval),
            )
        )

    def _on_report(self, endpoint: Endpoint, capabilities: dict[str, Any]) -> None:
        """Every composed report: the pools requests may name (a driver may
        add or drop pools while it runs)."""
        pools = tuple(pool["pool_name"] for pool in capabilities["pools"])
        if pools and pools != endpoint.ident.pools:
            if endpoint.ident.pools:
                LOG.info("Backend %s now has pools %s", self.name, ", ".join(pools))
            endpoint.ident = dataclasses.replace(endpoint.ident, pools=pools)

    async def stop(self, timeout: float) -> bool:
        """Stop consuming, finish running work within ``timeout``."""
        if self.publisher is not None:
            await self.publisher.stop()
        if self.server is not None:
            await self._blocking(self.server.stop)
        finished = True
        if self.manager is not None:
            finished = await self.manager.stop(timeout)
        if self.server is not None:
            await self._blocking(self.server.close)
        return finished
