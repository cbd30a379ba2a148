"""Capabilities as a scheduler sees them: bound to the scheduler topic's
fanout, each test with a topic of its own."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import oslo_messaging
import pytest
from oslo_config import cfg

from tests.functional.conftest import new_volume
from tests.functional.test_client import client as run_client
from tests.functional.test_client import ok, rows
from tests.functional.test_lifecycle import wait_status
from volworker import exception
from volworker.rpc.rpcapi import VolumeAPI
from volworker.scheduler import CapabilityListener, PoolView, wait_for
from volworker.testing.listen import Reports
from volworker.testing.worker import RABBIT_URL, Worker

#: Every field design.md lists for each pool.
POOL_FIELDS = {
    "pool_name",
    "total_capacity_gb",
    "free_capacity_gb",
    "allocated_capacity_gb",
    "provisioned_capacity_gb",
    "reserved_percentage",
    "max_over_subscription_ratio",
    "thin_provisioning_support",
    "thick_provisioning_support",
    "QoS_support",
    "multiattach",
    "total_volumes",
    "online_extend_support",
}


def _pools(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["pool_name"]: p for p in report["capabilities"]["pools"]}


def _allocated(report: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {
        name: (pool["allocated_capacity_gb"], pool["total_volumes"])
        for name, pool in _pools(report).items()
    }


@pytest.fixture
def topic() -> str:
    return f"vwsched-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def reports(topic: str) -> Iterator[Reports]:
    collector = Reports(topic)
    yield collector
    collector.close()


@pytest.fixture
def fake_worker(
    topic: str, make_worker: Callable[..., Worker]
) -> Callable[..., Worker]:
    """A worker (not started) with one fake backend b1, pools a and b,
    reporting on the test's scheduler topic."""

    def make(
        interval: float = 3600, defaults: dict[str, Any] | None = None, **backend: Any
    ) -> Worker:
        return make_worker(
            {"b1": {"volume_driver": "fake", "fake_pools": "a,b", **backend}},
            defaults={
                "scheduler_topic": topic,
                "backend_stats_polling_interval": interval,
                "stats_timeout": 1,
                **(defaults or {}),
            },
        )

    return make


def _wait_log(worker: Worker, text: str, count: int = 1, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while worker.log().count(text) < count:
        assert time.monotonic() < deadline, f"no {count}x {text!r}:\n{worker.log()}"
        time.sleep(0.1)


def test_first_report_right_after_ready_has_every_field(
    reports: Reports,
    fake_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
) -> None:
    cluster = f"c{uuid.uuid4().hex[:8]}"
    worker = fake_worker(defaults={"cluster": cluster})
    before = datetime.datetime.now(datetime.UTC)
    worker.start().wait_ready()
    ready = time.monotonic()

    report = reports.wait_report(timeout=10)
    # The polling interval is an hour: only "right after ready" explains it
    assert report["received"] - ready < 10
    assert set(report) - {"received"} == {
        "service_name",
        "host",
        "capabilities",
        "cluster_name",
        "timestamp",
    }
    assert report["service_name"] == "volume"
    assert report["host"] == worker.server("b1")
    assert report["cluster_name"] == f"{cluster}@b1"
    taken = datetime.datetime.fromisoformat(report["timestamp"])
    assert taken.utcoffset() == datetime.timedelta(0)
    assert before <= taken <= datetime.datetime.now(datetime.UTC)

    caps = report["capabilities"]
    assert caps["volume_backend_name"] == "b1"
    assert caps["vendor_name"] == "volworker"
    assert caps["driver_version"] == "1.0.0"
    assert caps["storage_protocol"] == "fake"
    assert [p["pool_name"] for p in caps["pools"]] == ["a", "b"]
    for pool in caps["pools"]:
        assert set(pool) >= POOL_FIELDS, POOL_FIELDS - set(pool)
        assert pool["total_capacity_gb"] == 1000
        assert (pool["allocated_capacity_gb"], pool["total_volumes"]) == (0, 0)
        assert pool["max_over_subscription_ratio"] == 20.0

    api = client(worker)
    answered = api.get_capabilities(worker.server("b1"))
    # A member of a cluster also says who is in it.
    members = answered.pop("cluster")["members"]
    assert answered == caps
    assert [(m["alive"], m["operations"]) for m in members] == [(True, 0)]
    assert members[0]["owner"].startswith(f"{worker.server('b1')}/")
    fresh = api.get_capabilities(worker.server("b1"), discover=True)
    assert [p["pool_name"] for p in fresh["pools"]] == ["a", "b"]
    assert len(reports.all()) == 1  # discovering publishes nothing
    assert worker.stop(30) == 0


def test_allocations_follow_creates_and_deletes(
    reports: Reports,
    fake_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
) -> None:
    worker = fake_worker(interval=1)
    worker.start().wait_ready()
    api, server = client(worker), worker.server("b1")
    reports.wait_report()

    v1 = new_volume(worker, "b1", size=3, host=f"{server}#a")
    v2 = new_volume(worker, "b1", size=5, host=f"{server}#b")
    v3 = new_volume(worker, "b1", size=2)  # the default pool: a
    for volume in (v1, v2, v3):
        api.create_volume(volume)
    for volume in (v1, v2, v3):
        wait_status(api, server, volume["id"], "available")
    report = reports.wait_report(lambda r: _allocated(r) == {"a": (5, 2), "b": (5, 1)})
    assert _pools(report)["a"]["provisioned_capacity_gb"] == 5  # the driver's

    api.delete_volume(v1)
    reports.wait_report(lambda r: _allocated(r) == {"a": (2, 1), "b": (5, 1)})


def test_publish_service_capabilities_is_answered(
    reports: Reports,
    fake_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
) -> None:
    worker = fake_worker()
    worker.start().wait_ready()
    api, server = client(worker), worker.server("b1")
    first = reports.wait_report()
    volume = new_volume(worker, "b1", size=4)
    api.create_volume(volume)
    wait_status(api, server, volume["id"], "available")
    assert len(reports.all()) == 1

    api.publish_service_capabilities()
    answer = reports.wait_report(lambda r: r["received"] > first["received"])
    # the driver's figures are those of the last poll, and say so; the
    # worker's own counts are current
    assert answer["timestamp"] == first["timestamp"]
    assert _allocated(answer) == {"a": (4, 1), "b": (0, 0)}


def test_a_scheduler_that_starts_later_asks(
    topic: str,
    reports: Reports,
    fake_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
) -> None:
    worker = fake_worker()
    worker.start().wait_ready()
    reports.wait_report()

    transport = oslo_messaging.get_rpc_transport(cfg.CONF, url=RABBIT_URL)
    view = PoolView(stale_after=60)
    try:
        with CapabilityListener(transport, view, topic=topic):
            time.sleep(1)
            assert view.pools() == []
            client(worker).publish_service_capabilities()
            pools = wait_for(view, lambda p: len(p) == 2, 30)
    finally:
        transport.cleanup()
    server = worker.server("b1")
    assert [p.key for p in pools] == [f"{server}#a", f"{server}#b"]
    assert all(not p.stale and p.cluster_name is None for p in pools)
    assert pools[0].capabilities["vendor_name"] == "volworker"


@pytest.mark.parametrize(
    "bad",
    [
        {"fake_failures": "get_volume_stats:VolumeBackendAPIException"},
        {"fake_method_latency": "get_volume_stats:30"},
    ],
    ids=["failing", "hanging"],
)
def test_bad_stats_after_start_block_nothing_and_send_nothing_fresh(
    bad: dict[str, str],
    reports: Reports,
    fake_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
) -> None:
    # The first stats call (at setup) succeeds, every later one is bad
    worker = fake_worker(interval=1, fake_healthy_calls="get_volume_stats:1", **bad)
    worker.start().wait_ready()
    api, server = client(worker), worker.server("b1")
    first = reports.wait_report()

    _wait_log(worker, "Capabilities of", count=2)
    volumes = [new_volume(worker, "b1") for _ in range(3)]
    for volume in volumes:
        api.create_volume(volume)
    for volume in volumes:
        wait_status(api, server, volume["id"], "available")
    _wait_log(worker, "not published", count=3)
    if "fake_method_latency" in bad:
        assert "did not answer within 1s" in worker.log()
        # one hung call at a time: later rounds wait for it
        assert "waiting for it instead of calling it again" in worker.log()

    with pytest.raises(exception.VolumeBackendAPIException):
        api.get_capabilities(server, discover=True)
    latest = api.get_capabilities(server)
    assert [p["pool_name"] for p in latest["pools"]] == ["a", "b"]

    # asked, it repeats the last good figures under their old timestamp
    seen = len(reports.all())
    api.publish_service_capabilities()
    answer = reports.wait_report(lambda r: r["received"] > first["received"])
    assert answer["timestamp"] == first["timestamp"]
    assert _allocated(answer)["a"] == (3, 3)
    assert {r["timestamp"] for r in reports.all()} == {first["timestamp"]}
    assert len(reports.all()) == seen + 1


@pytest.mark.parametrize(
    ("bad", "cause"),
    [
        (
            {"fake_failures": "get_volume_stats:VolumeBackendAPIException"},
            "get_volume_stats fails as configured",
        ),
        (
            {"fake_method_latency": "get_volume_stats:4"},
            "get_volume_stats did not answer within 1s",
        ),
    ],
    ids=["failing", "hanging"],
)
def test_bad_stats_at_setup_mean_not_ready(
    bad: dict[str, str],
    cause: str,
    reports: Reports,
    fake_worker: Callable[..., Worker],
) -> None:
    worker = fake_worker(**bad)
    worker.start("--backend", "b1")
    assert worker.wait(60) != 0
    assert "READY=1" not in worker.notified
    lines = [ln for ln in worker.log().splitlines() if "could not be set up" in ln]
    assert len(lines) == 1 and "Backend b1" in lines[0] and cause in lines[0]
    assert reports.all() == []


def test_client_shows_the_pools_at_a_glance(
    topic: str,
    fake_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
) -> None:
    worker = fake_worker(fake_pool_capacity_gb=2000)
    worker.start().wait_ready()
    api, server = client(worker), worker.server("b1")
    volume = new_volume(worker, "b1", size=500, host=f"{server}#b")
    api.create_volume(volume)
    wait_status(api, server, volume["id"], "available")
    args = ("--url", RABBIT_URL, "--topic", worker.topic, "capabilities")
    args += ("--scheduler-topic", topic)

    table = rows(ok(run_client(*args)))
    assert [r["POOL"] for r in table] == [f"{server}#a", f"{server}#b"]
    assert table[0]["USED"] == "0 of 2,000 GiB (0%)"
    assert (table[1]["ALLOCATED"], table[1]["VOLUMES"]) == ("500 GiB", "1")
    assert {r["PROVISIONING"] for r in table} == {"thin"}
    assert all(re.fullmatch(r"\d+s", r["AGE"]) for r in table), table

    pools = json.loads(ok(run_client(*args, "--format", "json")))
    assert [p["pool"] for p in pools] == [f"{server}#a", f"{server}#b"]
    assert pools[1]["capabilities"]["allocated_capacity_gb"] == 500
    assert not pools[1]["stale"]

    # the figures are those of the worker's last poll (at start, an hour's
    # interval): a scheduler that wants them younger than a second sees them
    # stale
    time.sleep(1.5)
    table = rows(ok(run_client(*args, "--stale-after", "1")))
    assert all(r["AGE"].endswith("STALE") for r in table), table


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Children started here get SIGINT as at a terminal. A test run started
    in the background (a shell's `&` job) has SIGINT ignored, a child
    inherits that, and Python keeps it ignored; a handler, unlike an
    ignored signal, goes back to the default in the child."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def test_client_watches_until_interrupted(
    topic: str, fake_worker: Callable[..., Worker], tmp_path: pathlib.Path
) -> None:
    worker = fake_worker()
    worker.start().wait_ready()
    command = [sys.executable, "-m", "volworker.cmd.client", "--url", RABBIT_URL]
    command += ["--topic", worker.topic, "capabilities", "--watch", "--every", "0.2"]
    command += ["--scheduler-topic", topic]
    # PYTHONFAULTHANDLER: a client that does not stop is made to say where
    # each of its threads is (SIGABRT), for the failure to show.
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    errors = tmp_path / "client.stderr"
    with (
        _interruptible(),
        open(errors, "w") as stderr,
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        ) as proc,
    ):
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(8)]
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            proc.wait(30)
            raise AssertionError(
                "the client did not stop within 30 s of SIGINT; its threads:\n"
                + errors.read_text()
            ) from None
        assert code == 0, errors.read_text()
    pools = [ln.split()[0] for ln in lines if ln.startswith(worker.host)]
    assert {f"{worker.server('b1')}#a", f"{worker.server('b1')}#b"} <= set(pools)
