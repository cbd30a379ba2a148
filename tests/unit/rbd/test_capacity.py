"""Capacity from Ceph: df of the pool, its quota, what its images promise."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ceph import CephCluster
from tests.unit.rbd.conftest import Build, GiB, Pool, volume
from volworker_drivers.rbd.driver import RBDDriver


@pytest.fixture
def admin(ceph_cluster: CephCluster) -> Iterator[Any]:
    import rados

    client = rados.Rados(conffile=str(ceph_cluster.conf), rados_id="admin")
    client.connect(timeout=30)
    yield client
    client.shutdown()


def _quota(admin: Any, pool: str, size: int) -> None:
    cmd = {"prefix": "osd pool set-quota", "pool": pool, "field": "max_bytes"}
    ret, _, err = admin.mon_command(json.dumps({**cmd, "val": str(size)}), b"")
    assert ret == 0, err


def test_capacity_follows_the_quota(
    build: Build, ceph_cluster: CephCluster, admin: Any
) -> None:
    static = build(report_dynamic_total_capacity=False)
    dynamic = build()
    _quota(admin, ceph_cluster.pool, 3 * GiB)
    try:
        pool = static.get_volume_stats(refresh=True)["pools"][0]
        assert pool["total_capacity_gb"] == 3
        assert 0 < pool["free_capacity_gb"] <= 3
        pool = dynamic.get_volume_stats(refresh=True)["pools"][0]
        assert pool["total_capacity_gb"] <= 3
    finally:
        _quota(admin, ceph_cluster.pool, 0)
    pool = static.get_volume_stats(refresh=True)["pools"][0]
    assert pool["total_capacity_gb"] > 3  # the cluster's size (memstore, 4 GiB)


def test_pool_entry(driver: RBDDriver, pool: Pool, ceph_cluster: CephCluster) -> None:
    import rbd

    driver.create_volume(volume(size=2))
    rbd.RBD().create(pool.ioctx, "someone-elses", 3 * GiB)
    stats = driver.get_volume_stats(refresh=True)
    assert stats["storage_protocol"] == "ceph"
    (entry,) = stats["pools"]
    assert entry["pool_name"] == ceph_cluster.pool
    assert entry["provisioned_capacity_gb"] == 5
    assert entry["total_volumes"] == 1
    assert entry["thin_provisioning_support"] is True
    assert entry["multiattach"] is True
    assert entry["online_extend_support"] is True
