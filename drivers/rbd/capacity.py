"""Capacity and capabilities of the backend's pool, from Ceph itself.

Total and free come from ``ceph df`` and the pool's quota, computed as
Cinder's RBD driver does so that schedulers see the same figures: with a
byte quota the pool holds at most the quota; free is what the cluster can
still place in the pool (``max_avail``, which accounts for replication),
capped by the quota. ``report_dynamic_total_capacity`` reports the total as
used plus free, which moves as other pools fill the cluster.
"""

from __future__ import annotations

import logging
from typing import Any

from . import names
from .cluster import Cluster
from .images import GiB, Images, size_gb

__all__ = ["capacity", "pool_stats", "usage"]

LOG = logging.getLogger(__name__)


def capacity(cluster: Cluster, dynamic: bool) -> dict[str, float]:
    """``total_capacity_gb`` and ``free_capacity_gb`` of the pool."""
    pool = cluster.settings.pool
    df = cluster.command("df")
    stats = next(p["stats"] for p in df["pools"] if p["name"] == pool)
    quota = int(cluster.command("osd pool get-quota", pool=pool)["quota_max_bytes"])
    used = int(stats.get("stored", stats["bytes_used"]))
    free = int(stats["max_avail"])
    if quota:
        total = quota
        free = max(min(quota - used, free), 0)
    else:
        total = int(df["stats"]["total_bytes"])
    if dynamic:
        total = used + free
    return {
        "total_capacity_gb": round(total / GiB, 2),
        "free_capacity_gb": round(free / GiB, 2),
    }


def usage(images: Images) -> dict[str, int]:
    """What the images of the pool promise (``provisioned_capacity_gb``,
    whoever made them) and how many are volumes (``total_volumes``)."""
    provisioned = volumes = 0
    for name in images.names():
        size = images.size(name)
        if size is None:
            continue  # removed while we looked
        provisioned += size_gb(size)
        volumes += names.volume_id_of(name) is not None
    return {"provisioned_capacity_gb": provisioned, "total_volumes": volumes}


def pool_stats(
    images: Images, *, dynamic: bool, reserved_percentage: int, ratio: float
) -> dict[str, Any]:
    """The entry of the backend's one pool in get_volume_stats."""
    found: dict[str, Any]
    try:
        found = {**capacity(images.cluster, dynamic), **usage(images)}
    except Exception as exc:
        # an unreadable pool is reported, not fatal: the scheduler stops
        # placing volumes there until it answers again
        LOG.warning("Cannot read the capacity of pool %s: %s", images.pool, exc)
        found = {"total_capacity_gb": "unknown", "free_capacity_gb": "unknown"}
    return {
        "pool_name": images.pool,
        **found,
        "reserved_percentage": reserved_percentage,
        "max_over_subscription_ratio": ratio,
        "thin_provisioning_support": True,
        "thick_provisioning_support": False,
        "QoS_support": False,
        "multiattach": True,
        "online_extend_support": True,
        "sparse_copy_volume": True,
    }
