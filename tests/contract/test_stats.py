"""get_volume_stats returns what the seed asks of it."""

from __future__ import annotations

import numbers

import pytest

from tests.contract.conftest import Backend

REQUIRED = (
    "volume_backend_name",
    "vendor_name",
    "driver_version",
    "storage_protocol",
    "total_capacity_gb",
    "free_capacity_gb",
)
BOOLEANS = (
    "QoS_support",
    "thin_provisioning_support",
    "thick_provisioning_support",
    "multiattach",
    "online_extend_support",
)


def _capacity_ok(value: object) -> bool:
    if value in ("unknown", "infinite"):
        return True
    return (
        isinstance(value, numbers.Real) and not isinstance(value, bool) and value >= 0
    )


def test_required_fields(backend: Backend) -> None:
    stats = backend.driver.get_volume_stats(refresh=True)
    missing = [key for key in REQUIRED if key not in stats]
    assert not missing, f"stats lack {missing}"
    assert stats["volume_backend_name"] == backend.driver.configuration.backend_name
    assert stats["driver_version"] == backend.driver.VERSION
    assert isinstance(stats["vendor_name"], str) and stats["vendor_name"]
    assert isinstance(stats["storage_protocol"], str) and stats["storage_protocol"]
    assert _capacity_ok(stats["total_capacity_gb"])
    assert _capacity_ok(stats["free_capacity_gb"])


def test_pools(backend: Backend) -> None:
    stats = backend.driver.get_volume_stats(refresh=True)
    pools = stats["pools"]
    assert isinstance(pools, list) and pools
    names = [pool["pool_name"] for pool in pools]
    assert len(set(names)) == len(names), f"duplicate pool names {names}"
    for pool in pools:
        assert isinstance(pool["pool_name"], str) and pool["pool_name"]
        assert _capacity_ok(pool["total_capacity_gb"]), pool
        assert _capacity_ok(pool["free_capacity_gb"]), pool
        for key in BOOLEANS:
            if key in pool:
                assert isinstance(pool[key], bool), (key, pool[key])
        if "reserved_percentage" in pool:
            assert 0 <= pool["reserved_percentage"] <= 100
        if "max_over_subscription_ratio" in pool:
            assert float(pool["max_over_subscription_ratio"]) >= 1


def _pool(backend: Backend, name: str) -> dict[str, object]:
    stats = backend.driver.get_volume_stats(refresh=True)
    return next(p for p in stats["pools"] if p["pool_name"] == name)


def test_provisioned_follows_volumes(backend: Backend) -> None:
    name = backend.driver.get_volume_stats(refresh=True)["pools"][-1]["pool_name"]
    before = _pool(backend, name)
    if "provisioned_capacity_gb" not in before:
        pytest.skip("the driver does not report provisioned_capacity_gb (optional)")
    volume = backend.create(size=3, pool=name)
    after = _pool(backend, name)
    assert after["provisioned_capacity_gb"] == before["provisioned_capacity_gb"] + 3
    if "total_volumes" in before:
        assert after["total_volumes"] == before["total_volumes"] + 1
    backend.driver.delete_volume(volume)
    assert (
        _pool(backend, name)["provisioned_capacity_gb"]
        == before["provisioned_capacity_gb"]
    )
