"""Checking a driver's stats report and adding the worker's own counts."""

from __future__ import annotations

import math
from typing import Any

import pytest

from volworker import capability_report, exception


def _report(**overrides: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "volume_backend_name": "b1",
        "vendor_name": "acme",
        "driver_version": "1.2.3",
        "storage_protocol": "iSCSI",
        "pools": [
            {"pool_name": "gold", "total_capacity_gb": 100, "free_capacity_gb": 40},
            {"pool_name": "silver", "total_capacity_gb": 50.5, "free_capacity_gb": 0},
        ],
    }
    report.update(overrides)
    return report


def _invalid(raw: Any, match: str) -> None:
    with pytest.raises(exception.VolumeBackendAPIException, match=match):
        capability_report.check(raw)


def test_a_good_report_gets_every_pool_field() -> None:
    caps = capability_report.check(_report())
    assert [p["pool_name"] for p in caps["pools"]] == ["gold", "silver"]
    published = capability_report.with_allocations(caps, {})
    for pool in published["pools"]:
        assert set(capability_report.POOL_FIELDS) <= set(pool)
    for key in capability_report.REQUIRED:
        assert caps[key] == _report()[key]


def test_seed_defaults_and_backend_defaults() -> None:
    caps = capability_report.check(_report(), {"max_over_subscription_ratio": 20.0})
    pool = caps["pools"][0]
    assert pool["thin_provisioning_support"] is False
    assert pool["thick_provisioning_support"] is True
    assert pool["QoS_support"] is False
    assert pool["multiattach"] is False
    assert pool["online_extend_support"] is True
    assert pool["reserved_percentage"] == 0
    assert pool["max_over_subscription_ratio"] == 20.0


def test_a_pool_inherits_top_level_values_before_defaults() -> None:
    raw = _report(reserved_percentage=10, multiattach=True)
    raw["pools"][1]["reserved_percentage"] = 5
    caps = capability_report.check(raw, {"reserved_percentage": 1})
    assert [p["reserved_percentage"] for p in caps["pools"]] == [10, 5]
    assert all(p["multiattach"] for p in caps["pools"])
    assert "reserved_percentage" not in caps  # the pools carry it


@pytest.mark.parametrize("key", capability_report.REQUIRED)
def test_missing_required_field(key: str) -> None:
    raw = _report()
    del raw[key]
    _invalid(raw, f"{key} is None, not a non-empty string")


def test_required_fields_must_be_strings() -> None:
    _invalid(_report(driver_version=1.2), "driver_version is 1.2")
    _invalid(_report(vendor_name=""), "vendor_name is ''")


@pytest.mark.parametrize("raw", [None, [], "stats", 42])
def test_a_report_that_is_not_a_dict(raw: Any) -> None:
    _invalid(raw, "not a dict")


@pytest.mark.parametrize("pools", [{"pool_name": "gold"}, "gold", 3])
def test_pools_not_a_list(pools: Any) -> None:
    _invalid(_report(pools=pools), "pools is a .*, not a list")


def test_pool_entries_must_be_dicts_with_a_name() -> None:
    _invalid(_report(pools=["gold"]), r"pools\[0\] is a str, not a dict")
    raw = _report()
    del raw["pools"][1]["pool_name"]
    _invalid(raw, r"pools\[1\] has pool_name None")
    _invalid(_report(pools=[{"pool_name": "a#b", "total_capacity_gb": 1}]), "'a#b'")


def test_duplicate_pool_names() -> None:
    raw = _report()
    raw["pools"][1]["pool_name"] = "gold"
    _invalid(raw, "pool 'gold' is listed 2 times")


@pytest.mark.parametrize("value", ["unknown", "infinite", "UNKNOWN", 0, 1e6])
def test_capacities_accepted(value: Any) -> None:
    raw = _report()
    raw["pools"][0]["free_capacity_gb"] = value
    pool = capability_report.check(raw)["pools"][0]
    assert pool["free_capacity_gb"] == (
        value.lower() if isinstance(value, str) else value
    )


@pytest.mark.parametrize(
    "value", ["100", "lots", -1, -0.5, math.nan, math.inf, True, None, [1]]
)
def test_capacities_refused(value: Any) -> None:
    raw = _report()
    raw["pools"][1]["total_capacity_gb"] = value
    _invalid(raw, "pool 'silver': total_capacity_gb is .*not a number >= 0")


def test_missing_capacity_in_a_pool() -> None:
    raw = _report()
    del raw["pools"][0]["free_capacity_gb"]
    _invalid(raw, "pool 'gold': free_capacity_gb is missing")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("reserved_percentage", 101),
        ("reserved_percentage", "5"),
        ("max_over_subscription_ratio", 0.5),
        ("provisioned_capacity_gb", -3),
        ("thin_provisioning_support", "yes"),
        ("multiattach", 1),
    ],
)
def test_optional_fields_are_checked(key: str, value: Any) -> None:
    raw = _report()
    raw["pools"][0][key] = value
    _invalid(raw, f"pool 'gold': {key} is")


def test_every_problem_is_named() -> None:
    raw = _report(vendor_name=None)
    raw["pools"][0]["total_capacity_gb"] = -1
    raw["pools"][1]["free_capacity_gb"] = "many"
    with pytest.raises(exception.VolumeBackendAPIException) as info:
        capability_report.check(raw)
    message = str(info.value)
    assert "vendor_name" in message
    assert "'gold': total_capacity_gb" in message
    assert "'silver': free_capacity_gb" in message


def test_many_problems_are_cut_short() -> None:
    pools = [{"pool_name": f"p{i}"} for i in range(50)]
    with pytest.raises(exception.VolumeBackendAPIException, match="and 90 more"):
        capability_report.check(_report(pools=pools))


def test_values_json_cannot_carry() -> None:
    _invalid(_report(location_info=object()), "JSON cannot carry it")
    _invalid(_report(goodness=math.nan), "JSON cannot carry it")


@pytest.mark.parametrize("pools", [None, []])
def test_no_pools_is_one_pool_named_after_the_backend(pools: Any) -> None:
    raw = _report(pools=pools, total_capacity_gb=10, free_capacity_gb="unknown")
    raw["thin_provisioning_support"] = True
    caps = capability_report.check(raw)
    assert caps["pools"] == [
        {
            "pool_name": "b1",
            "total_capacity_gb": 10,
            "free_capacity_gb": "unknown",
            **capability_report.DEFAULTS,
            "thin_provisioning_support": True,
        }
    ]
    assert "total_capacity_gb" not in caps


def test_no_pools_still_needs_capacities() -> None:
    raw = _report()
    del raw["pools"]
    _invalid(raw, "pool 'b1': total_capacity_gb is missing")


def test_other_fields_pass_through() -> None:
    raw = _report(replication_enabled=False, filter_function="x < 1")
    raw["pools"][0]["location_info"] = "acme:gold"
    caps = capability_report.check(raw)
    assert caps["replication_enabled"] is False
    assert caps["filter_function"] == "x < 1"
    assert caps["pools"][0]["location_info"] == "acme:gold"


def test_the_driver_does_not_report_allocations() -> None:
    raw = _report()
    raw["pools"][0].update(allocated_capacity_gb=999, total_volumes=999)
    published = capability_report.with_allocations(capability_report.check(raw), {})
    assert published["pools"][0]["allocated_capacity_gb"] == 0
    assert published["pools"][0]["total_volumes"] == 0


def test_allocations_merged_per_pool() -> None:
    raw = _report()
    raw["pools"][1]["provisioned_capacity_gb"] = 77
    caps = capability_report.check(raw)
    allocations = {
        "gold": {"allocated_capacity_gb": 30, "total_volumes": 3},
        "silver": {"allocated_capacity_gb": 5, "total_volumes": 1},
        None: {"allocated_capacity_gb": 2, "total_volumes": 2},
        "gone": {"allocated_capacity_gb": 9, "total_volumes": 9},
    }
    gold, silver = capability_report.with_allocations(caps, allocations)["pools"]
    # Volumes without a pool are in the default (first) pool
    assert (gold["allocated_capacity_gb"], gold["total_volumes"]) == (32, 5)
    assert (silver["allocated_capacity_gb"], silver["total_volumes"]) == (5, 1)
    assert gold["provisioned_capacity_gb"] == 32  # defaults to allocated
    assert silver["provisioned_capacity_gb"] == 77  # the driver's
    assert "allocated_capacity_gb" not in caps["pools"][0]  # not changed


def test_a_thousand_pools() -> None:
    pools = [
        {"pool_name": f"p{i}", "total_capacity_gb": 10, "free_capacity_gb": 5}
        for i in range(1000)
    ]
    caps = capability_report.check(_report(pools=pools))
    allocations = {"p999": {"allocated_capacity_gb": 4, "total_volumes": 2}}
    published = capability_report.with_allocations(caps, allocations)
    assert len(published["pools"]) == 1000
    assert published["pools"][-1]["allocated_capacity_gb"] == 4
