"""volworker.nbd_access: what a client is told for an NBD attachment."""

from __future__ import annotations

import os
import pathlib
import stat

from volworker import nbd_access

TLS = {"psk_identity": "0f" * 16, "psk_key": "ab" * 32}
DATA = {"host": "10.0.0.5", "port": 10809, "export_name": "Ab-_x" * 4}


def test_tls_access_writes_a_private_key_file(tmp_path: pathlib.Path) -> None:
    psk_dir = tmp_path / "keys" / "vol@host"
    access = nbd_access.prepare({**DATA, "tls": TLS}, str(psk_dir))
    key_file = psk_dir / "keys.psk"
    assert access.psk_file == str(key_file)
    assert key_file.read_text() == f"{TLS['psk_identity']}:{TLS['psk_key']}\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(psk_dir.stat().st_mode) == 0o700
    assert os.listdir(psk_dir) == ["keys.psk"]
    assert access.uri() == (
        f"nbds://{TLS['psk_identity']}@10.0.0.5:10809/{DATA['export_name']}"
        f"?tls-psk-file={str(key_file).replace('/', '%2F').replace('@', '%40')}"
    )
    args = access.qemu_args()
    assert args[:2] == [
        "--object",
        f"tls-creds-psk,id=tls0,endpoint=client,dir={psk_dir},"
        f"username={TLS['psk_identity']}",
    ]
    assert args[2:] == [
        "--image-opts",
        "driver=raw,file.driver=nbd,file.host=10.0.0.5,file.port=10809,"
        f"file.export={DATA['export_name']},file.tls-creds=tls0",
    ]
    assert TLS["psk_key"] not in " ".join(args) + access.uri()

    nbd_access.prepare({**DATA, "tls": {**TLS, "psk_key": "cd" * 32}}, str(psk_dir))
    assert "cd" * 32 in key_file.read_text()  # a new key replaces the old one
    nbd_access.forget(str(psk_dir))
    assert not psk_dir.exists()


def test_plain_access_needs_no_key(tmp_path: pathlib.Path) -> None:
    access = nbd_access.prepare({**DATA, "host": "fd00::5"}, str(tmp_path / "k"))
    assert access.psk_file is None and not (tmp_path / "k").exists()
    assert access.uri() == f"nbd://[fd00::5]:10809/{DATA['export_name']}"
    assert access.qemu_args() == [
        "--image-opts",
        "driver=raw,file.driver=nbd,file.host=fd00::5,file.port=10809,"
        f"file.export={DATA['export_name']}",
    ]


def test_commas_in_a_key_directory_are_doubled_for_qemu(
    tmp_path: pathlib.Path,
) -> None:
    access = nbd_access.prepare({**DATA, "tls": TLS}, str(tmp_path / "a,b"))
    assert f"dir={tmp_path}/a,,b," in access.qemu_args()[1]
