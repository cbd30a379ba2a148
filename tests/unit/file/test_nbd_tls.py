"""TLS-PSK on the file driver's exports, with real clients: one key per
attachment, nowhere but its file and the connection info, refused the
moment the attachment ends, and the same key served again after a restart."""

from __future__ import annotations

import logging
import os
import pathlib
import re
import shutil
import stat

import pytest

from tests.contract import nbdclient
from tests.unit.file.conftest import Build
from tests.unit.file.helpers import MiB, created, nbd_io, nbd_reachable
from volworker.context import RequestContext
from volworker.objects import Attachment, Volume
from volworker_drivers.file import nbd
from volworker_drivers.file.driver import FileDriver

CTX = RequestContext()
CLIENT = {"host": "client-1"}


def _plain(info: dict) -> dict:
    """The same export without its key, as a client without TLS sees it."""
    data = {k: v for k, v in info["data"].items() if k != "tls"}
    return {**info, "data": data}


def _with_key(info: dict, other: dict) -> dict:
    """This export with another attachment's key."""
    return {**info, "data": {**info["data"], "tls": other["data"]["tls"]}}


def _key_dir(driver: FileDriver, vol: Volume) -> pathlib.Path:
    (export,) = driver.exports.exports(vol.id)
    tls_dir = driver.exports.tls_dir(export)
    assert tls_dir is not None
    return pathlib.Path(tls_dir)


def _pid(driver: FileDriver, vol: Volume) -> int:
    (export,) = driver.exports.exports(vol.id)
    pid = nbd.running_pid(driver.exports.pid_file(export), export.export_name)
    assert pid is not None
    return pid


def _attached(vol: Volume, info: dict) -> Volume:
    return vol.replace(attachments=[Attachment("a1", vol.id, CLIENT, info)])


def test_each_attachment_gets_a_key_of_its_own(driver: FileDriver) -> None:
    first, second = created(driver), created(driver)
    infos = [driver.initialize_connection(v, CLIENT) for v in (first, second)]
    tls = [info["data"]["tls"] for info in infos]
    for key in tls:
        assert set(key) == {"psk_identity", "psk_key"}
        assert re.fullmatch(r"[0-9a-f]{64}", key["psk_key"])  # 256 bits
        assert re.fullmatch(r"[0-9a-f]{32}", key["psk_identity"])
    assert tls[0]["psk_key"] != tls[1]["psk_key"]
    assert tls[0]["psk_identity"] != tls[1]["psk_identity"]
    # The same connector again gets the same key.
    assert driver.initialize_connection(first, CLIENT) == infos[0]


def test_only_the_key_holder_gets_in(driver: FileDriver) -> None:
    vol, other_vol = created(driver), created(driver)
    info = driver.initialize_connection(vol, CLIENT)
    other = driver.initialize_connection(other_vol, CLIENT)
    nbd_io(info, f"write -P 0x6b 0 {MiB}")
    assert "read 1048576/1048576" in nbd_io(info, f"read -P 0x6b 0 {MiB}")
    assert not nbd_reachable(_plain(info))
    assert not nbd_reachable(_with_key(info, other))
    assert nbdclient.nbdinfo(_plain(info), "--list").returncode != 0
    assert nbdclient.nbdinfo(_with_key(info, other), "--list").returncode != 0


def test_key_files_are_private_and_hold_one_key(driver: FileDriver) -> None:
    vol = created(driver)
    tls = driver.initialize_connection(vol, CLIENT)["data"]["tls"]
    key_dir = _key_dir(driver, vol)
    key_file = key_dir / "keys.psk"
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(pathlib.Path(driver.exports.dir).stat().st_mode) == 0o700
    assert key_file.read_text() == f"{tls['psk_identity']}:{tls['psk_key']}\n"
    # The key is in that file and nowhere else the driver writes.
    for path in pathlib.Path(driver.configuration.state_dir).rglob("*"):
        if path.is_file() and path != key_file:
            text = path.read_text(errors="replace")
            assert tls["psk_key"] not in text and tls["psk_identity"] not in text


def test_keys_stay_off_command_lines_and_logs(
    driver: FileDriver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vol = created(driver)
    tls = driver.initialize_connection(vol, CLIENT)["data"]["tls"]
    cmdline = pathlib.Path(f"/proc/{_pid(driver, vol)}/cmdline").read_bytes()
    assert b"--tls-creds=tls0" in cmdline
    assert f"dir={_key_dir(driver, vol)}".encode() in cmdline
    for secret in tls.values():
        assert secret.encode() not in cmdline
        assert secret not in caplog.text
    assert "TLS-PSK" in caplog.text


def test_terminate_refuses_the_key_at_once(driver: FileDriver) -> None:
    vol = created(driver)
    info = driver.initialize_connection(vol, CLIENT)
    key_dir = _key_dir(driver, vol)
    driver.terminate_connection(vol, CLIENT)
    assert not key_dir.exists()
    assert os.listdir(driver.exports.dir) == []
    again = driver.initialize_connection(vol, CLIENT)
    assert again["data"]["tls"] != info["data"]["tls"]
    # The old key does not open the new export either, even on its port.
    old_key = _with_key(again, info)
    assert not nbd_reachable(old_key) and nbd_reachable(again)


def test_a_removed_key_file_locks_a_live_server(driver: FileDriver) -> None:
    vol = created(driver)
    info = driver.initialize_connection(vol, CLIENT)
    shutil.rmtree(_key_dir(driver, vol))
    # GnuTLS reads the key file at each handshake: no file, no way in.
    assert not nbd_reachable(info)


@pytest.mark.parametrize("server_died", [True, False], ids=["dead", "live"])
def test_a_restart_restores_the_key_from_the_attachment(
    build: Build, driver: FileDriver, server_died: bool
) -> None:
    vol = created(driver)
    info = driver.initialize_connection(vol, CLIENT)
    nbd_io(info, f"write -P 0x3c 0 {MiB}")
    pid = _pid(driver, vol)
    if server_died:
        os.kill(pid, 9)
    shutil.rmtree(_key_dir(driver, vol))  # as if the state directory was lost

    restarted = build()
    restarted.ensure_export(CTX, _attached(vol, info))
    assert "read 1048576/1048576" in nbd_io(info, f"read -P 0x3c 0 {MiB}")
    assert (_pid(restarted, vol) == pid) is not server_died  # a live one is kept
    assert restarted.initialize_connection(vol, CLIENT) == info


def test_a_restart_without_the_attachment_ends_the_key(
    build: Build, driver: FileDriver
) -> None:
    vol = created(driver)
    info = driver.initialize_connection(vol, CLIENT)
    key_dir = _key_dir(driver, vol)
    build().ensure_export(CTX, vol)  # the worker knows no attachment
    assert not key_dir.exists()
    assert not nbd_reachable(info)


def test_a_plain_server_is_not_adopted_for_a_tls_export(
    build: Build, driver: FileDriver
) -> None:
    vol = created(driver)
    plain = build(nbd_tls="none")
    info = plain.initialize_connection(vol, CLIENT)
    assert "tls" not in info["data"] and nbd_reachable(info)
    # The attachment says TLS for that export: the plain server must go.
    secured = driver.initialize_connection(created(driver), CLIENT)
    wanted = {**info, "data": {**info["data"], "tls": secured["data"]["tls"]}}
    driver.ensure_export(CTX, _attached(vol, wanted))
    assert not nbd_reachable(info)
    assert nbd_reachable(wanted)
    assert nbd.secured_as(_pid(driver, vol), str(_key_dir(driver, vol)))


def test_nbd_tls_none_serves_plain_exports_with_a_warning(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    driver = build(nbd_tls="none")
    assert "nbd_tls = none" in caplog.text
    vol = created(driver)
    info = driver.initialize_connection(vol, CLIENT)
    assert "tls" not in info["data"]
    assert nbd.secured_as(_pid(driver, vol), None)
    assert "read 4096/4096" in nbd_io(info, "read 0 4096")
    caplog.clear()
    # Served again under psk it stays plain (its client has no key), and
    # the operator hears about it.
    build().ensure_export(CTX, _attached(vol, info))
    assert nbd_reachable(info)
    assert "over plain NBD" in caplog.text


def test_a_lost_key_file_gets_a_new_key_on_the_next_attach(driver: FileDriver) -> None:
    vol = created(driver)
    info = driver.initialize_connection(vol, CLIENT)
    shutil.rmtree(_key_dir(driver, vol))
    again = driver.initialize_connection(vol, CLIENT)
    assert again["data"]["tls"] != info["data"]["tls"]
    assert nbd_reachable(again) and not nbd_reachable(info)
