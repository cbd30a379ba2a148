"""/metrics and /healthz over real HTTP from the endpoint's own threads."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from volworker.health import Health
from volworker.metrics.http import Endpoint, parse_address


def _get(url: str, accept: str = "") -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read().decode()
            return response.status, response.headers["Content-Type"], body
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Health]]:
    registry = CollectorRegistry()
    Counter("volworker_test_things", "Things.", registry=registry).inc(3)
    health = Health(3, lambda: True)
    health.watch("b1", consuming=lambda: True, failed_rounds=lambda: 0)
    endpoint = Endpoint(("127.0.0.1", 0), registry, health)
    endpoint.start()
    yield endpoint.url, health
    endpoint.stop()


async def test_metrics_in_both_exposition_formats(served: tuple[str, Health]) -> None:
    url, _ = served
    code, kind, body = await asyncio.to_thread(_get, f"{url}/metrics")
    assert code == 200 and kind.startswith("text/plain")
    assert "volworker_test_things_total 3.0" in body
    openmetrics = "application/openmetrics-text; version=1.0.0"
    code, kind, body = await asyncio.to_thread(_get, f"{url}/metrics", openmetrics)
    assert kind.startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")


async def test_healthz_answers_503_until_serving(served: tuple[str, Health]) -> None:
    url, health = served
    code, kind, body = await asyncio.to_thread(_get, f"{url}/healthz")
    assert (code, kind) == (503, "application/json")
    assert '"phase": "starting"' in body
    health.serving("Serving b1")
    code, _, body = await asyncio.to_thread(_get, f"{url}/healthz")
    assert code == 200 and '"b1": "ready"' in body
    code, _, _ = await asyncio.to_thread(_get, f"{url}/nothing-here")
    assert code == 404


def test_addresses() -> None:
    assert parse_address("127.0.0.1:9669") == ("127.0.0.1", 9669)
    assert parse_address("[::1]:0") == ("::1", 0)
    assert parse_address("metrics.example:80") == ("metrics.example", 80)
    for bad in ("9669", ":9669", "host:", "host:http", "host:70000"):
        with pytest.raises(ValueError, match="is not host:port"):
            parse_address(bad)


async def test_a_taken_port_is_the_callers_error() -> None:
    health = Health(3, lambda: True)
    first = Endpoint(("127.0.0.1", 0), CollectorRegistry(), health)
    first.start()
    try:
        port = int(first.url.rpartition(":")[2])
        second = Endpoint(("127.0.0.1", port), CollectorRegistry(), health)
        with pytest.raises(OSError):
            second.start()
    finally:
        first.stop()
