"""What an attacker on the storage network runs against an export: the same
clients a compute host uses, with no key, a made-up key or someone else's."""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from typing import Any

from tests.contract import nbdclient

TIMEOUT = 60


def plain(info: dict[str, Any]) -> dict[str, Any]:
    """The connection without its key: a client that does not speak TLS."""
    data = {k: v for k, v in info["data"].items() if k != "tls"}
    return {**info, "data": data}


def with_key(info: dict[str, Any], tls: dict[str, str]) -> dict[str, Any]:
    """The connection with another key."""
    return {**info, "data": {**info["data"], "tls": tls}}


def guessed_keys(info: dict[str, Any]) -> list[dict[str, str]]:
    """The right identity with a random key, and a random identity."""
    identity = info["data"]["tls"]["psk_identity"]
    return [
        {"psk_identity": identity, "psk_key": secrets.token_hex(32)},
        {"psk_identity": secrets.token_hex(16), "psk_key": secrets.token_hex(32)},
    ]


def qemu_nbd_list(info: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """``qemu-nbd --list`` against the export's port, with the key the
    connection carries (none without ``tls``)."""
    data = info["data"]
    cmd = ["qemu-nbd", "--list", "-b", data["host"], "-p", str(data["port"])]
    with tempfile.TemporaryDirectory(prefix="vw-attack-") as tmp:
        if "tls" in data:
            tls = data["tls"]
            with open(f"{tmp}/keys.psk", "w") as f:
                f.write(f"{tls['psk_identity']}:{tls['psk_key']}\n")
            cmd += [
                "--object",
                "tls-creds-psk,id=tls0,endpoint=client,"
                f"dir={tmp},username={tls['psk_identity']}",
                "--tls-creds=tls0",
            ]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )


def nbdinfo_list(info: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """``nbdinfo --list`` against the export's port, not told its name."""
    return nbdclient.nbdinfo(
        {**info, "data": {**info["data"], "export_name": ""}}, "--list"
    )


def gets_nothing(info: dict[str, Any]) -> list[str]:
    """What clients got from the export with this connection: an empty list
    when each was refused, and the two that ask for the export list (and
    are not told the name) never saw the name."""
    name = info["data"]["export_name"]
    leaks = []
    runs = {
        "qemu-io read": nbdclient.qemu_io(info, "read 0 4096", read_only=True),
        "nbdinfo --size": nbdclient.nbdinfo(info, "--size"),
        "nbdinfo --list": nbdinfo_list(info),
        "qemu-nbd --list": qemu_nbd_list(info),
    }
    for what, done in runs.items():
        if done.returncode == 0:
            leaks.append(f"{what} succeeded: {done.stdout[:200]}")
        if what.endswith("--list") and name in done.stdout + done.stderr:
            leaks.append(f"{what} printed the export name")
    return leaks
