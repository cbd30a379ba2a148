"""Setting up: one clear line for each way a cluster, a key or a pool can be
wrong; BackendUnavailable (which the worker retries) only for a cluster that
does not answer."""

from __future__ import annotations

import json
import pathlib
import socket
import subprocess
import sys
import time

import pytest

from tests.ceph import WRONG_KEY, CephCluster
from tests.unit.rbd.conftest import Build
from volworker import exception
from volworker.context import RequestContext


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, text
    return text


def test_a_wrong_key_is_refused_at_once(
    build: Build, ceph_cluster: CephCluster, tmp_path: pathlib.Path
) -> None:
    conf = str(ceph_cluster.altered_conf(tmp_path, key=WRONG_KEY))
    driver = build(setup=False, rbd_ceph_conf=conf, rados_connection_retries=3)
    started = time.monotonic()
    with pytest.raises(exception.VolumeBackendAPIException) as raised:
        driver.do_setup(RequestContext.admin())
    assert not isinstance(raised.value, exception.BackendUnavailable)
    assert "refused client.volworker" in _one_line(raised.value)
    assert time.monotonic() - started < 5  # no retries for a refusal


def test_a_cluster_that_does_not_answer_is_unavailable(
    build: Build, ceph_cluster: CephCluster, tmp_path: pathlib.Path
) -> None:
    conf = str(
        ceph_cluster.altered_conf(tmp_path, mon_host=f"127.0.0.1:{_closed_port()}")
    )
    driver = build(
        setup=False,
        rbd_ceph_conf=conf,
        rados_connect_timeout=1,
        rados_connection_retries=2,
        rados_connection_interval=0,
    )
    started = time.monotonic()
    with pytest.raises(exception.BackendUnavailable) as raised:
        driver.do_setup(RequestContext.admin())
    assert "no Ceph monitor answered within 1s" in _one_line(raised.value)
    assert 2 <= time.monotonic() - started < 10


def test_a_user_without_a_key(build: Build) -> None:
    driver = build(setup=False, rbd_user="ghost")
    with pytest.raises(exception.VolumeBackendAPIException) as raised:
        driver.do_setup(RequestContext.admin())
    assert "no key for client.ghost" in _one_line(raised.value)


def test_a_missing_configuration_file(build: Build, tmp_path: pathlib.Path) -> None:
    driver = build(setup=False, rbd_ceph_conf=str(tmp_path / "nowhere.conf"))
    with pytest.raises(exception.VolumeBackendAPIException) as raised:
        driver.do_setup(RequestContext.admin())
    assert "cannot read the Ceph configuration" in _one_line(raised.value)


def test_a_missing_pool(build: Build) -> None:
    driver = build(setup=False, rbd_pool="no-such-pool")
    driver.do_setup(RequestContext.admin())
    with pytest.raises(exception.VolumeBackendAPIException) as raised:
        driver.check_for_setup_error()
    assert "pool no-such-pool does not exist" in _one_line(raised.value)


def test_a_pool_not_enabled_for_rbd(build: Build, ceph_cluster: CephCluster) -> None:
    import rados

    client = rados.Rados(conffile=str(ceph_cluster.conf), rados_id="admin")
    client.connect(timeout=30)

    def command(prefix: str, **args: object) -> None:
        ret, _, err = client.mon_command(json.dumps({"prefix": prefix, **args}), b"")
        assert ret == 0, err

    command("osd pool create", pool="plain", pg_num=1, pgp_num=1)
    try:
        driver = build(setup=False, rbd_pool="plain", rbd_user="")
        driver.do_setup(RequestContext.admin())
        with pytest.raises(exception.VolumeBackendAPIException) as raised:
            driver.check_for_setup_error()
        assert "pool plain is not enabled for RBD" in _one_line(raised.value)
        driver.close()
    finally:
        command(
            "osd pool rm", pool="plain", pool2="plain", yes_i_really_really_mean_it=True
        )
        client.shutdown()


def test_without_the_python_bindings(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = build(setup=False)
    monkeypatch.setitem(sys.modules, "rados", None)
    with pytest.raises(exception.VolumeBackendAPIException) as raised:
        driver.do_setup(RequestContext.admin())
    assert "install python3-rados and python3-rbd" in _one_line(raised.value)


def test_the_driver_loads_without_the_bindings() -> None:
    """A worker without an rbd backend never needs rados: loading the driver
    and listing its options must not import it."""
    code = (
        "import sys; sys.modules['rados'] = sys.modules['rbd'] = None; "
        "import volworker_drivers.rbd.driver, volworker_drivers.rbd.options"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
