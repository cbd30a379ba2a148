"""A worker on an rbd backend, as a process: ready on a healthy cluster and
serving a volume's life over the wire; a wrong key or a silent cluster is one
line and no READY=1."""

from __future__ import annotations

import pathlib
import socket
from collections.abc import Callable

from tests.ceph import WRONG_KEY, CephCluster
from tests.functional.conftest import new_snapshot, new_volume
from tests.functional.test_lifecycle import wait_status
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import Worker


def _setup_failure(worker: Worker) -> str:
    assert worker.wait(60) != 0, worker.log()
    assert "READY=1" not in worker.notified
    lines = [ln for ln in worker.log().splitlines() if "could not be set up" in ln]
    assert len(lines) == 1, worker.log()
    return lines[0]


def test_a_volume_life_on_rbd(
    make_worker: Callable[..., Worker],
    client: Callable[..., VolumeAPI],
    ceph_cluster: CephCluster,
) -> None:
    worker = make_worker({"ceph": ceph_cluster.backend()}).start().wait_ready()
    api = client(worker)
    caps = api.get_capabilities(worker.server("ceph"))
    assert caps["storage_protocol"] == "ceph"
    assert [p["pool_name"] for p in caps["pools"]] == [ceph_cluster.pool]
    volume = new_volume(worker, "ceph", size=1)
    api.create_volume(volume)
    wait_status(api, worker.server("ceph"), volume["id"], "available")
    snapshot = new_snapshot(volume)
    api.create_snapshot(worker.server("ceph"), snapshot)
    clone = new_volume(worker, "ceph", size=2, snapshot_id=snapshot["id"])
    api.create_volume(clone)
    wait_status(api, worker.server("ceph"), clone["id"], "available")
    info = api.initialize_connection(clone, {"host": "compute-1"})
    assert info["data"]["name"] == f"{ceph_cluster.pool}/volume-{clone['id']}"
    assert worker.stop() == 0


def test_a_wrong_key_is_one_line_and_no_ready(
    make_worker: Callable[..., Worker],
    ceph_cluster: CephCluster,
    tmp_path: pathlib.Path,
) -> None:
    conf = ceph_cluster.altered_conf(tmp_path, key=WRONG_KEY)
    backend = ceph_cluster.backend(rbd_ceph_conf=str(conf))
    worker = make_worker({"ceph": backend}).start("--backend", "ceph")
    line = _setup_failure(worker)
    assert "Backend ceph" in line and "Ceph refused client.volworker" in line
    assert "not available yet" not in worker.log()


def test_a_silent_cluster_is_retried_then_one_line(
    make_worker: Callable[..., Worker],
    ceph_cluster: CephCluster,
    tmp_path: pathlib.Path,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = ceph_cluster.altered_conf(tmp_path, mon_host=f"127.0.0.1:{port}")
    backend = ceph_cluster.backend(rbd_ceph_conf=str(conf), rados_connect_timeout=1)
    worker = make_worker(
        {"ceph": backend},
        defaults={"setup_retry_attempts": 2, "setup_retry_max_delay": 0.2},
    ).start("--backend", "ceph")
    line = _setup_failure(worker)
    assert "no Ceph monitor answered within 1s" in line
    assert worker.log().count("Backend ceph is not available yet") == 1
