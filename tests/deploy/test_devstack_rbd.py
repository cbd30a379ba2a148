"""devstack/ with a backend of driver rbd: pointed at an existing ceph.conf,
it writes the backend's options and the process it starts gets ready on
that cluster."""

from __future__ import annotations

import pathlib
import shlex
import signal
from collections.abc import Callable

from tests.ceph import CephCluster
from tests.conftest import require_service
from tests.deploy.options import read_config, unknown_options
from tests.deploy.test_devstack import STACK, Devstack, devstack, processes
from tests.deploy.units import UnitProcess

__all__ = ["devstack", "processes"]

SECRET = "457eb676-33da-42ec-9a8c-9293d545c337"


def _rbd_env(conf: pathlib.Path) -> dict[str, str]:
    return {
        "VOLWORKER_BACKENDS": "ceph:rbd,file",
        "VOLWORKER_RBD_CEPH_CONF": str(conf),
        "VOLWORKER_RBD_POOL": "volumes",
        "VOLWORKER_RBD_USER": "volworker",
        "VOLWORKER_RBD_SECRET_UUID": SECRET,
    }


def test_rbd_backend_is_configured(devstack: Devstack, tmp_path: pathlib.Path) -> None:
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\n")
    devstack.ok(*STACK, **_rbd_env(conf))
    config = read_config(devstack.conf)
    assert dict(config.items("ceph")) == {
        "volume_driver": "rbd",
        "volume_backend_name": "ceph",
        "rbd_ceph_conf": str(conf),
        "rbd_pool": "volumes",
        "rbd_user": "volworker",
        "rbd_secret_uuid": SECRET,
    }
    assert config.get("DEFAULT", "enabled_backends") == "ceph,file"
    assert unknown_options(devstack.conf) == []


def test_rbd_backend_needs_a_ceph_conf(
    devstack: Devstack, tmp_path: pathlib.Path
) -> None:
    done = devstack.run(*STACK, **_rbd_env(tmp_path / "missing.conf"))
    assert done.returncode != 0
    assert "VOLWORKER_RBD_CEPH_CONF" in done.stderr, done.stderr
    assert devstack.calls("run_process") == []


def test_rbd_backend_gets_ready_on_the_cluster(
    devstack: Devstack,
    tmp_path: pathlib.Path,
    processes: Callable[..., UnitProcess],
    ceph_cluster: CephCluster,
) -> None:
    require_service("rabbitmq", 5672)
    env = _rbd_env(ceph_cluster.conf)
    env["VOLWORKER_BACKENDS"] = "ceph:rbd"
    devstack.ok(*STACK, **env)
    (_, service, command) = devstack.calls("run_process")[0]
    proc = processes(tmp_path, {}, name=service)
    launched = proc.launch(
        shlex.split(command),
        {"OS_DEFAULT__HOST": proc.host, "OS_DEFAULT__VOLUME_TOPIC": proc.topic},
    )
    launched.wait_ready(60)
    status = [n for n in launched.notified if n.startswith("STATUS=")]
    assert status and status[-1].startswith("STATUS=Serving ceph"), status
    launched.signal(signal.SIGTERM)
    assert launched.wait(60) == 0, launched.log()
