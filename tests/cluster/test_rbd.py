"""A cluster of rbd members: when one dies, the member taking over fences
it (blocklists its librados client, so nothing it still had in flight
reaches the OSDs) before redoing its work, and its attachments stay where
they are, since compute hosts reach Ceph directly and no worker is on the
data path."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from tests.ceph import CephCluster
from tests.cluster.conftest import BACKEND, MEMBER_TIMEOUT, Cluster
from tests.cluster.test_attachments import (
    CONNECTOR,
    _attachment,
    _kill_with_its_exports,
    _wait,
)
from tests.contract import blockclient
from tests.contract.harness_rbd import purge
from tests.functional.test_lifecycle import wait_status
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import Worker

MiB = 1024**2


def test_a_dead_rbd_member_is_fenced_and_its_attachment_stays(
    cluster_of: Callable[[dict[str, Any]], Cluster],
    client: Callable[[Worker], VolumeAPI],
    ceph_cluster: CephCluster,
) -> None:
    with ceph_cluster.admin() as ioctx:
        purge(ioctx)
    cluster = cluster_of(ceph_cluster.backend())
    a, b = cluster.add("a").start(), cluster.add("b").start()
    a.wait_ready(60)
    b.wait_ready(60)
    volume = {"id": str(uuid.uuid4()), "size": 1, "host": b.server(BACKEND)}
    client(b).create_volume(volume)
    wait_status(client(b), b.server(BACKEND), volume["id"], "available")
    info = client(b).initialize_connection(volume, CONNECTOR)
    assert info["driver_volume_type"] == "rbd"
    blockclient.write(info, 0, MiB, 0x3C)
    fenced_before = ceph_cluster.blocklist()
    _kill_with_its_exports(b)

    def taken_over() -> dict[str, Any] | None:
        found = _attachment(cluster, volume["id"])
        served = (found and found["served_by"]) or ""
        return found if served.startswith(a.server(BACKEND) + "/") else None

    found = _wait(taken_over, MEMBER_TIMEOUT + 60, "a to take the attachment over")
    assert found["lost"] is None
    assert found["connection_info"] == info
    assert "Fenced " + b.server(BACKEND) in a.log()
    assert ceph_cluster.blocklist() != fenced_before
    # the compute host kept its volume all along
    assert blockclient.holds(info, 0, MiB, 0x3C)
    on_a = {**volume, "host": a.server(BACKEND)}
    assert client(a).get_volume(a.server(BACKEND), volume["id"])["status"] == "in-use"
    client(a).terminate_connection(on_a, CONNECTOR)
    wait_status(client(a), a.server(BACKEND), volume["id"], "available")
    client(a).delete_volume(on_a)
    assert a.stop() == 0
    with ceph_cluster.admin() as ioctx:
        purge(ioctx)
