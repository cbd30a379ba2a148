"""The scheduler's view of the pools: newest report wins, pools come and go,
quiet backends go stale."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from volworker.scheduler import CapabilityEndpoint, PoolView

T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)


def _caps(*pools: str, free: int = 10) -> dict[str, Any]:
    return {
        "volume_backend_name": "b1",
        "vendor_name": "acme",
        "pools": [
            {"pool_name": name, "total_capacity_gb": 100, "free_capacity_gb": free}
            for name in pools
        ],
    }


def _at(seconds: float) -> str:
    return (T0 + datetime.timedelta(seconds=seconds)).isoformat()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def view(clock: Clock) -> PoolView:
    return PoolView(stale_after=60, clock=clock)


def test_pools_are_keyed_host_backend_pool(view: PoolView) -> None:
    assert view.update("h1@b1", _caps("a", "b"), _at(0), "c1@b1")
    view.update("h2@b1", _caps("a"), _at(0))
    assert [p.key for p in view.pools()] == ["h1@b1#a", "h1@b1#b", "h2@b1#a"]
    pool = view.get("h1@b1#b")
    assert pool is not None
    assert (pool.host, pool.name, pool.cluster_name) == ("h1@b1", "b", "c1@b1")
    # the backend's fields travel with each pool
    assert pool.capabilities["vendor_name"] == "acme"
    assert pool.capabilities["free_capacity_gb"] == 10
    assert pool.timestamp == T0


def test_an_older_report_never_overwrites_a_newer_one(view: PoolView) -> None:
    assert view.update("h1@b1", _caps("a", free=5), _at(10))
    assert not view.update("h1@b1", _caps("a", "old", free=99), _at(9))
    assert [p.key for p in view.pools()] == ["h1@b1#a"]
    assert view.pools()[0].capabilities["free_capacity_gb"] == 5
    # the same timestamp again (a requested report) is taken
    assert view.update("h1@b1", _caps("a", free=4), _at(10))
    assert view.pools()[0].capabilities["free_capacity_gb"] == 4


def test_pools_missing_from_the_latest_report_disappear(view: PoolView) -> None:
    view.update("h1@b1", _caps("a", "b", "c"), _at(0))
    view.update("h2@b1", _caps("a"), _at(0))
    view.update("h1@b1", _caps("b"), _at(1))
    assert [p.key for p in view.pools()] == ["h1@b1#b", "h2@b1#a"]
    view.update("h1@b1", _caps(), _at(2))
    assert [p.key for p in view.pools()] == ["h2@b1#a"]


def test_a_quiet_backend_goes_stale(view: PoolView, clock: Clock) -> None:
    view.update("h1@b1", _caps("a"), _at(0))
    view.update("h2@b1", _caps("a"), _at(0))
    clock.advance(50)
    view.update("h2@b1", _caps("a"), _at(50))
    clock.advance(20)
    by_key = {p.key: p for p in view.pools()}
    assert by_key["h1@b1#a"].stale and by_key["h1@b1#a"].age == 70
    assert not by_key["h2@b1#a"].stale and by_key["h2@b1#a"].age == 20
    assert [p.key for p in view.pools(include_stale=False)] == ["h2@b1#a"]
    # a fresh report brings it back
    view.update("h1@b1", _caps("a"), _at(70))
    assert len(view.pools(include_stale=False)) == 2


def test_age_is_that_of_the_figures_not_of_the_message(
    view: PoolView, clock: Clock
) -> None:
    # a worker whose driver fails repeats its last good report, old timestamp
    view.update("h1@b1", _caps("a"), _at(0))
    clock.advance(61)
    view.update("h1@b1", _caps("a"), _at(0))
    assert view.pools()[0].stale


def test_a_clock_ahead_counts_as_age_zero(view: PoolView) -> None:
    view.update("h1@b1", _caps("a"), _at(30))
    assert view.pools()[0].age == 0


def test_forget(view: PoolView) -> None:
    view.update("h1@b1", _caps("a"), _at(0))
    view.forget("h1@b1")
    view.forget("h9@b1")
    assert view.pools() == []


@pytest.mark.parametrize(
    "timestamp", ["2026-01-01T12:00:00Z", "2026-01-01T12:00:00", T0]
)
def test_timestamps(view: PoolView, timestamp: Any) -> None:
    view.update("h1@b1", _caps("a"), timestamp)
    assert view.pools()[0].timestamp == T0


@pytest.mark.parametrize(
    ("caps", "timestamp"),
    [
        (_caps("a"), "yesterday"),
        (_caps("a"), ""),
        ({"pools": "a"}, _at(0)),
        ({"pools": [{"total_capacity_gb": 1}]}, _at(0)),
        ({"pools": ["a"]}, _at(0)),
    ],
)
def test_malformed_reports(view: PoolView, caps: Any, timestamp: Any) -> None:
    with pytest.raises(ValueError):
        view.update("h1@b1", caps, timestamp)
    assert view.pools() == []


def test_stale_after_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PoolView(stale_after=0)


def test_the_endpoint_feeds_the_view(view: PoolView) -> None:
    updated: list[str] = []
    endpoint = CapabilityEndpoint(view, updated.append)
    endpoint.update_service_capabilities(
        {}, "volume", "h1@b1", _caps("a"), None, _at(1)
    )
    endpoint.update_service_capabilities(
        {}, "volume", "h1@b1", _caps("x"), None, _at(0)
    )
    endpoint.update_service_capabilities(
        {}, "backup", "h2@b1", _caps("a"), None, _at(1)
    )
    endpoint.update_service_capabilities(
        {}, "volume", "h3@b1", {"pools": 1}, None, _at(1)
    )
    assert updated == ["h1@b1"]
    assert [p.key for p in view.pools()] == ["h1@b1#a"]
