"""The broker goes away for about 30 s during load and comes back.

A private RabbitMQ node (never the shared one) carries a worker, its load
and a scheduler's capability listener. Mid-load the node's application
stops (``rabbitmqctl stop_app``) for ~30 s and starts again. The worker
must reconnect by itself (same process), lose nothing it accepted, do
nothing twice, leave nothing stuck, and its capability reports must resume.
A call made during the outage must end at the caller with a clear timeout.

Queues are durable here (``amqp_durable_queues``, on the worker and the
clients): a transient queue, and what waits in it, is dropped by the broker
itself when its application stops, which no worker can help.
"""

from __future__ import annotations

import pathlib
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import oslo_messaging
import pytest
from oslo_config import cfg

from tests.conftest import IN_CI
from tests.faults.audit import wait_quiet
from tests.faults.broker import PrivateBroker, missing_tools
from tests.faults.load import Planner, Sender, reconcile
from tests.faults.rig import (
    BACKEND,
    audit_round,
    file_backend,
    journal_of,
    unexpected_errors,
    wait_for,
)
from tests.faults.tally import Tally
from volworker.rpc.rpcapi import VolumeAPI
from volworker.scheduler import CapabilityListener, PoolView
from volworker.testing.worker import Worker

OUTAGE = 30.0
OPERATIONS = 260
POLLING_INTERVAL = 2
CALL_TIMEOUT = 5.0
RABBIT = "oslo_messaging_rabbit"


@pytest.fixture
def broker(tmp_path: pathlib.Path) -> Iterator[PrivateBroker]:
    missing = missing_tools()
    if missing:
        message = f"a private RabbitMQ node needs {', '.join(missing)}"
        if IN_CI:
            pytest.fail(message + " (CI=true needs it)")
        pytest.skip(message)
    node = PrivateBroker(tmp_path / "rabbitmq")
    node.start()
    try:
        yield node
    finally:
        node.shutdown()


@pytest.fixture
def durable_api(broker: PrivateBroker) -> Iterator[Callable[..., VolumeAPI]]:
    """Clients on the private node with durable queues, like the worker."""
    apis: list[VolumeAPI] = []

    def make(topic: str, **kwargs: Any) -> VolumeAPI:
        api = VolumeAPI.from_url(broker.url, topic=topic, **kwargs)
        # NOTE: the driver registers its options with the first transport;
        # connections read them when they open, which is at the first send.
        cfg.CONF.set_override("amqp_durable_queues", True, group=RABBIT)
        apis.append(api)
        return api

    try:
        yield make
    finally:
        for api in apis:
            api.close()
        if apis:
            cfg.CONF.clear_override("amqp_durable_queues", group=RABBIT)


class Reports:
    """When a scheduler's view took each report of one backend."""

    def __init__(self, transport: oslo_messaging.Transport, topic: str) -> None:
        self.times: list[float] = []
        self._listener = CapabilityListener(
            transport, PoolView(), topic=topic, on_update=self._took
        )

    def _took(self, host: str) -> None:
        self.times.append(time.monotonic())

    def after(self, moment: float) -> int:
        return sum(1 for t in self.times if t > moment)

    def __enter__(self) -> Reports:
        self._listener.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.stop()


def _call_during_outage(api: VolumeAPI, server: str) -> tuple[str, float]:
    """A call made while the broker is away: how it ended, and when."""
    outcome: list[str] = []
    started = time.monotonic()

    def call() -> None:
        try:
            api.get_volume(server, str(uuid.uuid4()))
            outcome.append("answered")
        except oslo_messaging.MessagingTimeout:
            outcome.append("MessagingTimeout")
        except Exception as exc:
            outcome.append(type(exc).__name__)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(CALL_TIMEOUT + 10)
    return (outcome[0] if outcome else "still waiting"), time.monotonic() - started


@pytest.mark.time_limit(150)
def test_broker_outage_during_load(
    tmp_path: pathlib.Path,
    broker: PrivateBroker,
    durable_api: Callable[..., VolumeAPI],
    make_worker: Callable[..., Worker],
    load: Callable[..., Sender],
    tally: Tally,
) -> None:
    pool = tmp_path / "pool"
    scheduler_topic = f"vwtest-sched-{uuid.uuid4().hex[:8]}"
    worker = make_worker(
        file_backend(pool),
        defaults={
            "transport_url": broker.url,
            "max_concurrent_operations": 8,
            "backend_stats_polling_interval": POLLING_INTERVAL,
            "scheduler_topic": scheduler_topic,
        },
        extra={RABBIT: {"amqp_durable_queues": True}},
    )
    api = durable_api(worker.topic, timeout=30)
    quick = durable_api(worker.topic, timeout=CALL_TIMEOUT)
    server = worker.server(BACKEND)
    with Reports(api.transport, scheduler_topic) as reports:
        worker.start().wait_ready()
        wait_for(lambda: reports.times, 30, "a first capability report")
        quick.list_volumes(server)  # its reply queue exists before the outage

        planner = Planner(random.Random(), server)
        sender = load(api, server, planner.plan(OPERATIONS), pace=0.04)
        wait_for(lambda: sender.sent > OPERATIONS // 4, 30, "load under way")
        broker.stop_app()
        stopped = time.monotonic()
        tally.faults += 1
        call_outcome, call_took = _call_during_outage(quick, server)
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - stopped)))
        broker.start_app()
        back = time.monotonic()

        sender.join(120)
        assert not sender.is_alive(), "the load did not finish after the outage"
        reconcile(planner.model, sender)
        quiet = wait_quiet(journal_of(worker), sender.casts, timeout=60)
        wait_for(
            lambda: reports.after(back) >= 2,
            4 * POLLING_INTERVAL + 30,
            "capability reports after the outage",
        )
    findings = audit_round(
        worker, pool, sender.casts, sender.calls, planner.model, tally
    )
    print(
        f"outage of {back - stopped:.0f}s: {sender.sent} sent, quiet={quiet}, "
        f"call during the outage: {call_outcome} after {call_took:.1f}s; "
        f"{findings.report(5)}"
    )
    assert not worker.exited(), "the worker died instead of reconnecting"
    assert sender.failures == [], sender.failures
    assert not findings, findings.report(limit=40)
    assert unexpected_errors(worker) == []
    assert call_outcome == "MessagingTimeout" and call_took < CALL_TIMEOUT + 5, (
        f"a call made during the outage (timeout {CALL_TIMEOUT:.0f}s) ended "
        f"{call_outcome!r} after {call_took:.1f}s"
    )
    assert worker.stop() == 0
