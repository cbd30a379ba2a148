"""A driver's ``get_volume_stats`` report, checked, and the worker's own counts.

:func:`check` turns what a driver returned into the capabilities a scheduler
gets, or raises VolumeBackendAPIException naming what is wrong, so a driver
that returns nonsense is treated like one that raises:

- ``volume_backend_name``, ``vendor_name``, ``driver_version`` and
  ``storage_protocol`` are non-empty strings;
- ``pools``, when given, is a list of dicts, each with a unique ``pool_name``
  (without ``#``); a report without pools (missing, None or empty) is one
  pool named after ``volume_backend_name`` with the report's own figures;
- every pool has ``total_capacity_gb`` and ``free_capacity_gb``: a finite
  number >= 0, or ``"unknown"`` / ``"infinite"``;
- the optional per-pool fields, when given, have the seed's types; a pool
  without one takes the report's top-level value, then the backend's option
  (``reserved_percentage``, ``max_over_subscription_ratio``) or what the
  driver declares (``consistent_group_snapshot_enabled``), then the seed's
  default (thin False, thick True, QoS and multiattach False, online extend
  True); ``provisioned_capacity_gb`` defaults to what the worker allocated;
- everything else passes through as the driver gave it, provided JSON can
  carry it. Top-level capacity figures are dropped: the pools carry them.

:func:`with_allocations` adds each pool's ``allocated_capacity_gb`` and
``total_volumes`` from the worker's state; the driver's own values of these
two are not used.
"""

from __future__ import annotations

import collections
import functools
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from volworker import exception

__all__ = ["POOL_FIELDS", "REQUIRED", "check", "with_allocations"]

#: Top-level fields every report must have (non-empty strings).
REQUIRED = ("volume_backend_name", "vendor_name", "driver_version", "storage_protocol")

CAPACITIES = ("total_capacity_gb", "free_capacity_gb")
SPECIAL_CAPACITIES = frozenset({"unknown", "infinite"})
#: What the worker counts itself, per pool.
WORKER_FIELDS = ("allocated_capacity_gb", "total_volumes")

DEFAULTS: dict[str, Any] = {
    "reserved_percentage": 0,
    "max_over_subscription_ratio": 1.0,
    "thin_provisioning_support": False,
    "thick_provisioning_support": True,
    "QoS_support": False,
    "multiattach": False,
    "online_extend_support": True,
    "consistent_group_snapshot_enabled": False,
}

_MAX_PROBLEMS = 10


def _number(value: Any, low: float = 0.0, high: float = math.inf) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        upper = "" if high == math.inf else f" to {high:g}"
        raise ValueError(f"is {value!r}, not a number from {low:g}{upper}")
    return value


def _capacity(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in SPECIAL_CAPACITIES:
        return value.lower()
    try:
        return _number(value)
    except ValueError:
        raise ValueError(
            f"is {value!r}, not a number >= 0 or 'unknown'/'infinite'"
        ) from None


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"is {value!r}, not true or false")
    return value


#: Per-pool fields the worker checks, and how.
CHECKS: dict[str, Callable[[Any], Any]] = {
    "total_capacity_gb": _capacity,
    "free_capacity_gb": _capacity,
    "provisioned_capacity_gb": _number,
    "reserved_percentage": functools.partial(_number, high=100),
    "max_over_subscription_ratio": functools.partial(_number, low=1),
    "thin_provisioning_support": _flag,
    "thick_provisioning_support": _flag,
    "QoS_support": _flag,
    "multiattach": _flag,
    "online_extend_support": _flag,
    "consistent_group_snapshot_enabled": _flag,
}

#: Every field of a published pool (design.md, "Capabilities").
POOL_FIELDS = ("pool_name", *CHECKS, *WORKER_FIELDS)


def _pool(
    index: int, raw: Any, inherited: Mapping[str, Any], problems: list[str]
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        problems.append(f"pools[{index}] is a {type(raw).__name__}, not a dict")
        return {}
    name = raw.get("pool_name")
    label = f"pool {name!r}"
    if not isinstance(name, str) or not name or "#" in name:
        problems.append(f"pools[{index}] has pool_name {name!r}, not a name")
        label = f"pools[{index}]"
    pool = {"pool_name": name, **inherited, **raw}
    for key in WORKER_FIELDS:
        pool.pop(key, None)
    for key, checker in CHECKS.items():
        if key not in pool:
            if key in CAPACITIES:
                problems.append(f"{label}: {key} is missing")
            continue
        try:
            pool[key] = checker(pool[key])
        except ValueError as exc:
            problems.append(f"{label}: {key} {exc}")
    return pool


def _pools_of(raw: dict[str, Any], problems: list[str]) -> list[Any]:
    pools = raw.get("pools")
    if pools is None or pools == []:
        own = {k: raw[k] for k in CHECKS if k in raw}
        return [{"pool_name": raw.get("volume_backend_name"), **own}]
    if not isinstance(pools, list):
        problems.append(f"pools is a {type(pools).__name__}, not a list")
        return []
    return pools


def check(raw: Any, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The capabilities to publish from a driver's report (see the module).

    ``defaults`` are the backend's values of optional per-pool fields.
    Raises VolumeBackendAPIException listing the problems.
    """
    if not isinstance(raw, dict):
        raise _invalid([f"it is a {type(raw).__name__}, not a dict"])
    problems = [
        f"{key} is {raw.get(key)!r}, not a non-empty string"
        for key in REQUIRED
        if not isinstance(raw.get(key), str) or not raw.get(key)
    ]
    top = {k: raw[k] for k in CHECKS if k in raw and k not in CAPACITIES}
    inherited = {**DEFAULTS, **(defaults or {}), **top}
    pools = [
        _pool(i, pool, inherited, problems)
        for i, pool in enumerate(_pools_of(raw, problems))
    ]
    seen = collections.Counter(p.get("pool_name") for p in pools if p)
    problems.extend(
        f"pool {name!r} is listed {count} times"
        for name, count in seen.items()
        if count > 1
    )
    result = {k: v for k, v in raw.items() if k not in POOL_FIELDS and k != "pools"}
    result["pools"] = pools
    if not problems:
        try:
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as exc:
            problems.append(f"JSON cannot carry it: {exc}")
    if problems:
        raise _invalid(problems)
    return result


def _invalid(problems: list[str]) -> exception.VolumeBackendAPIException:
    shown = "; ".join(problems[:_MAX_PROBLEMS])
    if len(problems) > _MAX_PROBLEMS:
        shown += f"; and {len(problems) - _MAX_PROBLEMS} more"
    return exception.VolumeBackendAPIException(
        data=f"get_volume_stats returned an invalid report: {shown}"
    )


def with_allocations(
    capabilities: Mapping[str, Any],
    allocations: Mapping[str | None, Mapping[str, int]],
) -> dict[str, Any]:
    """``capabilities`` with each pool's ``allocated_capacity_gb`` and
    ``total_volumes`` from ``allocations`` (``state.records.pool_allocations``).

    Volumes recorded without a pool count in the first pool, the backend's
    default; volumes in a pool the report does not list are not shown.
    """
    pools = capabilities["pools"]
    default = pools[0]["pool_name"] if pools else None
    counts: dict[str, list[int]] = {}
    for name, figures in allocations.items():
        entry = counts.setdefault(name or default or "", [0, 0])
        entry[0] += int(figures["allocated_capacity_gb"])
        entry[1] += int(figures["total_volumes"])
    merged = []
    for pool in pools:
        allocated, volumes = counts.get(pool["pool_name"], (0, 0))
        own = {**pool, "allocated_capacity_gb": allocated, "total_volumes": volumes}
        own.setdefault("provisioned_capacity_gb", allocated)
        merged.append(own)
    return {**capabilities, "pools": merged}
