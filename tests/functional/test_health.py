"""/healthz and the systemd watchdog tell the same truth: not ready while
the backend is being set up, ready once it serves, and not healthy once its
driver stops giving stats; a worker that cannot open its endpoint says so
and exits."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from volworker.testing.metrics import health, metrics_url, scrape
from volworker.testing.worker import Worker

METRICS = {"metrics": {"listen": "127.0.0.1:0"}}


def _pings(worker: Worker, seconds: float) -> int:
    """WATCHDOG=1 pings received in the next ``seconds``."""
    before = worker.notified.count("WATCHDOG=1")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        worker._read_notify(0.1)
    return worker.notified.count("WATCHDOG=1") - before


def test_healthz_and_watchdog_follow_the_backend(
    monkeypatch: pytest.MonkeyPatch, make_worker: Callable[..., Worker]
) -> None:
    # systemd's WatchdogSec=1s: a ping every 0.5 s while healthy
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    worker = make_worker(
        {
            "b1": {
                "volume_driver": "fake",
                "fake_method_latency": "do_setup:2,get_volume_stats:0",
                # setup's stats are good, every later round fails
                "fake_healthy_calls": "get_volume_stats:1",
                "fake_failures": "get_volume_stats:VolumeBackendAPIException",
            }
        },
        defaults={"backend_stats_polling_interval": 1, "health_stats_failures": 3},
        extra=METRICS,
    ).start()
    url = metrics_url(worker)
    attempts = "volworker_backend_setup_attempts_total"
    deadline = time.monotonic() + 30
    while scrape(url).value(attempts) == 0:
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.05)
    # do_setup takes 2 s: set up, not yet ready
    code, body = health(url)
    assert (code, body["phase"]) == (503, "starting")
    assert scrape(url).value(attempts) == 1

    worker.wait_ready()
    code, body = health(url)
    assert (code, body["backends"]) == (200, {"b1": "ready"}), body
    assert scrape(url).value("volworker_backend_ready", backend="b1") == 1
    assert _pings(worker, 1.2) >= 1

    deadline = time.monotonic() + 30
    while (answer := health(url))[0] == 200:
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.2)
    code, body = answer
    assert body["backends"]["b1"] == "its stats failed 3 rounds in a row"
    assert scrape(url).value("volworker_backend_ready", backend="b1") == 0
    assert scrape(url).value("volworker_capability_rounds_failed_total") >= 3
    # the watchdog looks every 0.5 s: what it sent before it looked is old
    _pings(worker, 0.6)
    assert _pings(worker, 1.5) == 0  # systemd would restart it now
    assert any(line.startswith("STATUS=Not healthy: b1") for line in worker.notified)
    assert "volworker is not healthy: b1: its stats failed" in worker.log()
    assert worker.stop() == 0


def test_metrics_off_serves_nothing(make_worker: Callable[..., Worker]) -> None:
    worker = make_worker({"b1": {"volume_driver": "fake"}}).start().wait_ready()
    assert "Serving metrics" not in worker.log()
    assert worker.stop() == 0


def test_a_bad_address_is_a_configuration_error(
    make_worker: Callable[..., Worker],
) -> None:
    worker = make_worker(
        {"b1": {"volume_driver": "fake"}}, extra={"metrics": {"listen": "9669"}}
    ).start()
    assert worker.wait(30) == 2
    assert "listen = '9669' is not host:port" in worker.log()


def test_a_taken_port_fails_the_start(make_worker: Callable[..., Worker]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = make_worker(
            {"b1": {"volume_driver": "fake"}},
            extra={"metrics": {"listen": f"127.0.0.1:{port}"}},
        ).start()
        assert worker.wait(30) == 1
    assert f"Cannot serve metrics on 127.0.0.1:{port}" in worker.log()
    assert "READY=1" not in worker.notified
