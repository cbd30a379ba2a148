"""The worker process: its backends, readiness, signals and stop.

systemd hears ``READY=1`` only once every backend that can be set up is
consuming; ``STATUS=`` says which backends serve and which failed; SIGTERM or
SIGINT stops consuming, lets running work finish within
``graceful_shutdown_timeout`` and exits 0; SIGHUP re-reads the logging
options. The watchdog is fed, and ``/healthz`` answers 200, only while the
worker is healthy (:mod:`volworker.health`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import signal
import socket
import uuid

import oslo_messaging
from oslo_config import cfg

from volworker import broker, heap, log_thread, logs, systemd
from volworker.backend import Backend, Shared
from volworker.coordination import Coordination
from volworker.health import Health
from volworker.image import LocalImageService
from volworker.metrics.process import Metrics
from volworker.publisher import BatchPublisher
from volworker.senders import Senders
from volworker.state.private import private_dir
from volworker.state.store import Store

__all__ = ["Service", "register_opts", "service_opts"]

LOG = logging.getLogger(__name__)

service_opts = [
    cfg.StrOpt(
        "host",
        default=socket.gethostname(),
        sample_default="<hostname>",
        help="The name of this worker's host: servers are <host>@<backend>.",
    ),
    cfg.StrOpt(
        "cluster",
        help="A cluster name: the workers of one cluster serving a backend "
        "also consume <cluster>@<backend>, share one database and lock "
        "volumes through [coordination].",
    ),
    cfg.StrOpt(
        "state_path",
        default="/var/lib/volworker",
        help="Directory for the worker's state: database, locks, images and "
        "the drivers' runtime files.",
    ),
    cfg.ListOpt(
        "enabled_backends",
        default=["file"],
        help="The backends to serve; each has a section of its own.",
    ),
    cfg.FloatOpt(
        "graceful_shutdown_timeout",
        default=60.0,
        min=0.0,
        help="Seconds running operations get to finish after SIGTERM; "
        "operations not yet started wait in the journal for the next start.",
    ),
    cfg.IntOpt(
        "sender_threads",
        default=8,
        min=1,
        deprecated_name="outbox_threads",
        help="Threads that publish notifications and replies.",
    ),
    cfg.StrOpt(
        "notification_publisher",
        default="kombu",
        choices=[
            (
                "kombu",
                "oslo.messaging's messagingv2 bytes, published by volworker "
                "with kombu on one connection, the broker's confirms waited "
                "for in batches (RabbitMQ with classic queues; otherwise oslo "
                "is used, with a warning)",
            ),
            (
                "oslo",
                "oslo.messaging's Notifier, each notification confirmed "
                "before the next",
            ),
        ],
        help="What sends notifications. Both send the same messages to the "
        "same queues; kombu costs a third of the CPU per notification.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(service_opts)


def _publisher(conf: cfg.ConfigOpts) -> BatchPublisher | None:
    """The kombu publisher, or None for oslo's Notifier (configured so, or
    a broker setup only oslo.messaging handles)."""
    if conf.notification_publisher != "kombu":
        return None
    url = conf.oslo_messaging_notifications.transport_url or conf.transport_url
    why = broker.unsupported(conf, url)
    if why is not None:
        LOG.warning(
            "notification_publisher = kombu: %s; oslo.messaging's Notifier "
            "sends the notifications",
            why,
        )
        return None
    rabbit = conf[broker.RABBIT]
    broker.ssl_options(conf, url)  # a bad TLS setting fails the start
    return BatchPublisher(
        functools.partial(broker.connection, conf, url, "notify"),
        conf.control_exchange,
        # Read when it first connects: the backends settle durability first.
        durable=lambda: bool(rabbit.amqp_durable_queues),
        heartbeat_rate=max(1, rabbit.heartbeat_rate),
    )


class Service:
    """Runs the backends named at start until a signal stops it."""

    def __init__(
        self, conf: cfg.ConfigOpts, backends: list[str], *, strict: bool
    ) -> None:
        self.conf = conf
        self.names = backends
        #: with --backend, a backend that cannot start fails the process
        self.strict = strict
        self._stop = asyncio.Event()
        self.health: Health | None = None

    def _request_stop(self, signame: str) -> None:
        if not self._stop.is_set():
            LOG.info("Received %s: stopping", signame)
        if self.health is not None:
            self.health.stopping()
        self._stop.set()

    def _shared(self, store: Store, health: Health, metrics: Metrics) -> Shared:
        conf = self.conf
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=conf.max_concurrent_operations * len(self.names) + 8,
            thread_name_prefix="worker",
        )
        # Every start is a new incarnation of this worker: what the journal
        # holds for an older one is re-owned, so an incarnation that was
        # taken over (or is not quite dead) can record nothing any more.
        incarnation = uuid.uuid4().hex[:12]
        return Shared(
            conf,
            incarnation=incarnation,
            transport=oslo_messaging.get_rpc_transport(conf),
            notification_transport=oslo_messaging.get_notification_transport(conf),
            store=store,
            coordination=Coordination(
                conf.coordination.backend_url,
                f"{conf.host}/{incarnation}",
                "volworker",
                conf.coordination.lock_timeout,
                executor,
                per_volume=bool(conf.cluster),
                member_timeout=conf.coordination.member_timeout,
            ),
            senders=Senders(conf.sender_threads),
            publisher=_publisher(conf),
            executor=executor,
            image_service=LocalImageService.from_conf(conf),
            health=health,
            metrics=metrics,
        )

    async def _start_backends(self, shared: Shared) -> list[Backend]:
        backends = [Backend(name, shared) for name in self.names]
        results = await asyncio.gather(
            *(b.start() for b in backends), return_exceptions=True
        )
        started = []
        for backend, result in zip(backends, results, strict=True):
            if isinstance(result, BaseException):
                LOG.error("Backend %s could not be set up: %s", backend.name, result)
                LOG.debug("Backend %s setup failure", backend.name, exc_info=result)
            else:
                started.append(backend)
        return started

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop, sig.name)
        # A reload (SIGHUP) must not kill the worker; it changes what may
        # change while running (log levels), the rest waits for a restart.
        loop.add_signal_handler(signal.SIGHUP, logs.reload, self.conf)
        private_dir(self.conf.state_path)
        store = Store.from_conf(self.conf)
        self.health = Health(self.conf.health_stats_failures, lambda: store.running)
        # Served from the start, so that a slow setup shows.
        try:
            metrics = Metrics.from_conf(self.conf, self.health)
            metrics.start()
        except ValueError as exc:
            LOG.error("Configuration error: %s", exc)
            return 2
        except OSError as exc:
            LOG.error("Cannot serve metrics on %s: %s", self.conf.metrics.listen, exc)
            return 1
        shared = self._shared(store, self.health, metrics)
        await loop.run_in_executor(shared.executor, shared.store.start)
        await loop.run_in_executor(shared.executor, shared.coordination.start)
        shared.senders.start()
        if shared.publisher is not None:
            shared.publisher.start()
        try:
            return await self._serve(shared)
        finally:
            await loop.run_in_executor(shared.executor, shared.coordination.stop)
            shared.senders.stop(timeout=10)
            if shared.publisher is not None:
                shared.publisher.stop(timeout=10)
            await loop.run_in_executor(shared.executor, shared.store.stop)
            shared.transport.cleanup()
            shared.notification_transport.cleanup()
            shared.executor.shutdown(wait=False, cancel_futures=True)
            metrics.stop()

    async def _serve(self, shared: Shared) -> int:
        starting = asyncio.ensure_future(self._start_backends(shared))
        stopping = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            return 0
        stopping.cancel()
        started = starting.result()
        failed = [n for n in self.names if n not in {b.name for b in started}]
        if not started or (self.strict and failed):
            systemd.notify(f"STATUS=No backend could start: {', '.join(failed)}")
            return 1
        status = f"Serving {', '.join(b.name for b in started)}"
        if failed:
            status += f"; failed: {', '.join(failed)}"
        LOG.info("volworker ready: %s", status)
        # What start did is in the log before systemd (or a test) hears it.
        log_thread.flush()
        systemd.notify("READY=1", f"STATUS={status}")
        shared.health.serving(status)
        heap.settle()
        watchdog = asyncio.ensure_future(
            shared.health.watchdog(systemd.watchdog_interval())
        )
        await self._stop.wait()
        watchdog.cancel()
        systemd.notify("STOPPING=1", "STATUS=Stopping")
        timeout = self.conf.graceful_shutdown_timeout
        finished = await asyncio.gather(*(b.stop(timeout) for b in started))
        if not all(finished):
            LOG.warning("Stopped with operations unfinished; they resume at next start")
        LOG.info("volworker stopped")
        return 0
