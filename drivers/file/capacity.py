"""Capacity and capabilities of the pools, for the scheduler."""

from __future__ import annotations

import logging
import os
import stat
from typing import Any

from . import names
from .adoption import size_gb
from .pools import Pool
from .store import GiB

__all__ = ["pool_stats", "totals"]

LOG = logging.getLogger(__name__)


def _usage(pool: Pool) -> tuple[int, int]:
    """(provisioned GiB, number of volumes) of the files at the pool's top.

    Every visible regular file counts as provisioned, volumes or not
    (the seed's provisioned capacity includes what others put there); only
    ``volume-<uuid>`` files count as volumes.
    """
    provisioned = volumes = 0
    with pool.open() as root:
        for name in root.names():
            st = None if name.startswith(".") else root.lstat(name)
            if st is None or not stat.S_ISREG(st.st_mode):
                continue
            provisioned += size_gb(st)
            volumes += names.volume_id_of(name) is not None
    return provisioned, volumes


def pool_stats(pool: Pool, reserved_percentage: int, ratio: float) -> dict[str, Any]:
    """One pool's entry of ``pools`` in get_volume_stats."""
    capacity: dict[str, Any]
    try:
        fs = os.statvfs(pool.path)
        provisioned, volumes = _usage(pool)
        capacity = {
            "total_capacity_gb": round(fs.f_blocks * fs.f_frsize / GiB, 2),
            "free_capacity_gb": round(fs.f_bavail * fs.f_frsize / GiB, 2),
            "provisioned_capacity_gb": provisioned,
            "total_volumes": volumes,
        }
    except Exception as exc:
        # An unreadable pool is reported, not fatal: the scheduler
        # stops placing volumes there while the others go on.
        LOG.warning("Cannot read the capacity of pool %s: %s", pool.name, exc)
        capacity = {"total_capacity_gb": "unknown", "free_capacity_gb": "unknown"}
    return {
        "pool_name": pool.name,
        **capacity,
        "reserved_percentage": reserved_percentage,
        "max_over_subscription_ratio": ratio,
        "thin_provisioning_support": True,
        "thick_provisioning_support": False,
        "QoS_support": False,
        "multiattach": False,
        # An NBD client does not see its export grow, so extending an
        # attached volume would leave the client with the old size.
        "online_extend_support": False,
        "sparse_copy_volume": True,
    }


def totals(pools: list[dict[str, Any]]) -> dict[str, Any]:
    """Backend-wide capacity: the sum over the pools that report numbers."""
    known = [p for p in pools if not isinstance(p["total_capacity_gb"], str)]
    if not known:
        return {"total_capacity_gb": "unknown", "free_capacity_gb": "unknown"}
    return {
        "total_capacity_gb": round(sum(p["total_capacity_gb"] for p in known), 2),
        "free_capacity_gb": round(sum(p["free_capacity_gb"] for p in known), 2),
    }
