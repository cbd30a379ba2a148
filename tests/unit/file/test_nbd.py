"""NBD exports with a real client: lifecycle, ports, and restoring them after a
worker restart."""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.unit.file.conftest import Build
from tests.unit.file.helpers import (
    GiB,
    MiB,
    created,
    nbd_io,
    nbd_reachable,
    nbd_size,
    read,
    volume_path,
    write,
)
from volworker import exception
from volworker.context import RequestContext
from volworker.objects import Attachment, Volume
from volworker_drivers.file import nbd
from volworker_drivers.file.driver import FileDriver

CTX = RequestContext()
CLIENT = {"host": "client-1", "initiator": "iqn.test:client-1"}


def _pid(driver: FileDriver, vol: Volume) -> int | None:
    (export,) = driver.exports.exports(vol.id)
    return nbd.running_pid(driver.exports.pid_file(export), export.export_name)


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while nbd._alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _attached(vol: Volume, info: dict) -> Volume:
    return vol.replace(attachments=[Attachment("a1", vol.id, CLIENT, info)])


def _free_ports(count: int) -> list[int]:
    """``count`` consecutive ports that are free now."""
    for _ in range(100):
        base = random.randrange(20000, 30000)
        ports = list(range(base, base + count))
        if all(nbd._bindable("127.0.0.1", p) for p in ports):
            return ports
    raise AssertionError("no free ports")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket of the test's own holding a port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", _free_ports(1)[0]))
        sock.listen()
        yield sock


def test_export_lifecycle(driver: FileDriver) -> None:
    vol = created(driver)
    path = volume_path(driver, vol)
    write(path, 0, b"\x5a" * MiB)
    info = driver.initialize_connection(vol, CLIENT)
    data = info["data"]
    assert info["driver_volume_type"] == "nbd"
    assert data["host"] == "127.0.0.1" and isinstance(data["port"], int)
    assert len(data["export_name"]) >= 20
    assert nbd_size(info) == GiB
    assert "read 1048576/1048576" in nbd_io(info, f"read -P 0x5a 0 {MiB}")
    nbd_io(info, f"write -P 0xa5 {GiB - MiB} {MiB}")
    assert read(path, GiB - MiB, MiB) == b"\xa5" * MiB

    pid = _pid(driver, vol)
    assert pid and driver.initialize_connection(vol, dict(CLIENT)) == info
    assert _pid(driver, vol) == pid  # the same server, not a second one
    with pytest.raises(exception.VolumeIsBusy, match="client-1"):
        driver.initialize_connection(vol, {"host": "client-2"})
    with pytest.raises(exception.VolumeIsBusy, match="exported"):
        driver.delete_volume(vol)

    driver.terminate_connection(vol, {"host": "client-2"})  # not attached
    assert nbd_reachable(info)
    driver.terminate_connection(vol, CLIENT)
    assert not nbd_reachable(info)
    assert not nbd._alive(pid)
    assert os.listdir(driver.exports.dir) == []
    driver.terminate_connection(vol, CLIENT)  # again: nothing to do
    driver.delete_volume(vol)


def test_no_connector_and_remove_export_end_everything(driver: FileDriver) -> None:
    first, second = created(driver), created(driver)
    infos = [driver.initialize_connection(v, CLIENT) for v in (first, second)]
    assert infos[0]["data"]["export_name"] != infos[1]["data"]["export_name"]
    assert infos[0]["data"]["port"] != infos[1]["data"]["port"]
    driver.terminate_connection(first, None)
    driver.remove_export(CTX, second)
    assert not any(nbd_reachable(i) for i in infos)
    assert driver.exports.exports() == []


def test_wrong_export_name_is_refused(driver: FileDriver) -> None:
    info = driver.initialize_connection(created(driver), CLIENT)
    guessed = {**info, "data": {**info["data"], "export_name": "volume"}}
    assert not nbd_reachable(guessed)


def test_port_range_is_honoured(build: Build, listener: socket.socket) -> None:
    taken = listener.getsockname()[1]
    driver = build(nbd_port_range=f"{taken}-{taken}")
    with pytest.raises(exception.VolumeBackendAPIException, match="no free port"):
        driver.initialize_connection(created(driver), CLIENT)
    assert driver.exports.exports() == []
    low, high = _free_ports(2)
    driver = build(nbd_port_range=f"{low}-{high}")
    ports = {
        driver.initialize_connection(created(driver), CLIENT)["data"]["port"]
        for _ in range(2)
    }
    assert ports == {low, high}
    with pytest.raises(exception.VolumeBackendAPIException, match="no free port"):
        driver.initialize_connection(created(driver), CLIENT)


def test_ensure_export_restarts_a_dead_server(build: Build, driver: FileDriver) -> None:
    vol = created(driver)
    info = driver.initialize_connection(vol, CLIENT)
    nbd_io(info, f"write -P 0x33 0 {MiB}")
    old_pid = _pid(driver, vol)
    assert old_pid
    _kill(old_pid)
    assert not nbd_reachable(info)

    restarted = build()  # a new worker on the same backend
    restarted.ensure_export(CTX, _attached(vol, info))
    assert nbd_reachable(info)
    new_pid = _pid(restarted, vol)
    assert new_pid and new_pid != old_pid
    assert "read 1048576/1048576" in nbd_io(info, f"read -P 0x33 0 {MiB}")
    assert restarted.initialize_connection(vol, CLIENT) == info


def test_ensure_export_adopts_a_live_server(build: Build, driver: FileDriver) -> None:
    vol = created(driver)
    info = driver.initialize_connection(vol, CLIENT)
    pid = _pid(driver, vol)
    restarted = build()
    restarted.ensure_export(CTX, _attached(vol, info))
    assert _pid(restarted, vol) == pid
    restarted.terminate_connection(vol, CLIENT)
    assert not nbd_reachable(info)


def test_ensure_export_stops_what_no_attachment_names(
    build: Build, driver: FileDriver
) -> None:
    vol = created(driver)
    info = driver.initialize_connection(vol, CLIENT)
    restarted = build()
    restarted.ensure_export(CTX, vol)  # the worker knows no attachment
    assert not nbd_reachable(info)
    assert restarted.exports.exports() == []
    restarted.delete_volume(vol)


def test_ensure_export_cannot_move_to_another_port(
    driver: FileDriver, listener: socket.socket
) -> None:
    vol = created(driver)
    info = driver.initialize_connection(vol, CLIENT)
    driver.terminate_connection(vol, CLIENT)
    moved = {**info, "data": {**info["data"], "port": listener.getsockname()[1]}}
    with pytest.raises(exception.VolumeBackendAPIException, match="holds that port"):
        driver.ensure_export(CTX, _attached(vol, moved))


SECRET = "5ec12e7" * 10
SOUND = {"host": "127.0.0.1", "port": 10809, "export_name": "x" * 22}


@pytest.mark.parametrize(
    "data",
    [
        {**SOUND, "port": "10809"},
        {**SOUND, "export_name": "../../etc/passwd"},
        {**SOUND, "host": ""},
        {**SOUND, "tls": {"psk_identity": "short", "psk_key": SECRET}},
        {**SOUND, "tls": {"psk_identity": SECRET, "psk_key": "ab" * 16}},  # 128 bits
        {**SOUND, "tls": {"psk_identity": SECRET + ":x\nother", "psk_key": SECRET}},
        {**SOUND, "tls": {"psk_identity": SECRET}},
        {**SOUND, "tls": SECRET},
    ],
)
def test_ensure_export_rejects_malformed_connection_info(
    driver: FileDriver, data: dict
) -> None:
    vol = created(driver)
    info = {"driver_volume_type": "nbd", "data": data}
    with pytest.raises(exception.InvalidInput, match="malformed") as err:
        driver.ensure_export(CTX, _attached(vol, info))
    assert SECRET not in str(err.value)  # which attachment, not what it holds
    assert driver.exports.exports() == []


def test_a_reused_pid_is_never_signalled(driver: FileDriver) -> None:
    vol = created(driver)
    driver.initialize_connection(vol, CLIENT)
    (export,) = driver.exports.exports(vol.id)
    pid = _pid(driver, vol)
    assert pid
    _kill(pid)
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        # As if the dead server's pid now belonged to another process.
        with open(driver.exports.pid_file(export), "w") as f:
            f.write(str(stranger.pid))
        driver.terminate_connection(vol, CLIENT)
        assert stranger.poll() is None
        assert driver.exports.exports() == []
    finally:
        stranger.kill()
        stranger.wait()


def test_extend_is_seen_by_the_next_export(driver: FileDriver) -> None:
    vol = created(driver)
    driver.extend_volume(vol, 2)
    assert nbd_size(driver.initialize_connection(vol, CLIENT)) == 2 * GiB
    stats = driver.get_volume_stats(refresh=True)
    assert all(p["online_extend_support"] is False for p in stats["pools"])


def test_export_names_stay_out_of_logs(
    driver: FileDriver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="volworker_drivers.file")
    info = driver.initialize_connection(created(driver), CLIENT)
    assert "--export-name=***" in caplog.text
    assert info["data"]["export_name"] not in caplog.text


def test_an_address_the_host_does_not_have(build: Build) -> None:
    driver = build(setup=False, nbd_host="203.0.113.1")  # TEST-NET-3
    driver.do_setup(CTX)
    with pytest.raises(exception.VolumeBackendAPIException) as err:
        driver.check_for_setup_error()
    assert "cannot listen on nbd_host 203.0.113.1" in str(err.value)
    with pytest.raises(exception.VolumeBackendAPIException, match=r"203\.0\.113\.1"):
        driver.initialize_connection(created(driver), CLIENT)
    assert driver.exports.exports() == []
    assert os.listdir(driver.exports.dir) == []
