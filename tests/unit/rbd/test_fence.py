"""Fencing: a worker that is gone may still have writes in flight, and the
OSDs must refuse them before anyone redoes its work. The next instance of
the same host fences the last one at setup; a cluster member taking over a
dead member's work fences that member, but never a host that has started
again since (its new instance is alive and fenced the old one itself)."""

from __future__ import annotations

import uuid

from tests.ceph import CephCluster
from tests.unit.rbd.conftest import Build, volume
from volworker import exception
from volworker_drivers.rbd.driver import RBDDriver


def _host() -> str:
    return f"test-{uuid.uuid4().hex[:8]}@rbd1"


def _writes(driver: RBDDriver) -> bool:
    """Whether the driver can still change the pool."""
    try:
        driver.create_volume(volume())
    except exception.VolumeBackendAPIException:
        return False
    return True


def test_the_next_instance_of_a_host_fences_the_last(
    build: Build, ceph_cluster: CephCluster
) -> None:
    host = _host()
    first = build(host=host, incarnation="one")
    assert _writes(first)
    address = first.cluster.address
    second = build(host=host, incarnation="two")
    assert address in ceph_cluster.blocklist()
    assert not _writes(first)  # the attack: the old instance writes on
    assert _writes(second)


def test_a_member_fences_the_dead_member_it_takes_over(
    build: Build, ceph_cluster: CephCluster
) -> None:
    dead = build(host=_host(), incarnation="one")
    taker = build(host=_host(), incarnation="one")
    assert _writes(dead)
    taker.fence_member(dead.configuration.instance)
    assert dead.cluster.address in ceph_cluster.blocklist()
    assert not _writes(dead)
    assert _writes(taker)


def test_a_host_started_again_is_not_fenced_for_its_old_instance(
    build: Build, ceph_cluster: CephCluster
) -> None:
    host = _host()
    old = build(host=host, incarnation="old")
    new = build(host=host, incarnation="new")  # fences old itself
    taker = build(host=_host())
    taker.fence_member(old.configuration.instance)
    assert new.cluster.address not in ceph_cluster.blocklist()
    assert _writes(new)
    taker.fence_member(taker.configuration.instance)  # never itself
    assert _writes(taker)
