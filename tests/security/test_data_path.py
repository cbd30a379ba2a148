"""Attacks on an attached volume's NBD export, against a running worker over
RabbitMQ: each must fail, and the holder of the attachment's key must still
read what was written."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import tempfile
import uuid

import pytest

from tests.contract import nbdclient
from tests.security import attacker
from tests.security.probe import ERR_TLS_REQD, probe
from tests.security.rig import Rig, wait_until
from volworker import exception, nbd_access

MiB = 1024**2


def test_the_key_holder_reads_what_was_written(rig: Rig) -> None:
    info = rig.attach(rig.volume())
    nbdclient.write(info, 0, MiB, 0x5A)
    assert nbdclient.holds(info, 0, MiB, 0x5A)  # qemu-io, TLS-PSK
    # libnbd, TLS-PSK: nbdcopy reads the export into a file, the bytes match
    with nbdclient.access(info) as access, tempfile.TemporaryDirectory() as tmp:
        copy = f"{tmp}/copy.raw"
        subprocess.run(["nbdcopy", access.uri(), copy], check=True, timeout=120)
        with open(copy, "rb") as f:
            assert f.read(MiB + 1) == b"\x5a" * MiB + b"\0"
    listed = nbdclient.nbdinfo(info, "--list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert info["data"]["export_name"] in listed.stdout  # its own, and only it
    assert listed.stdout.count('"export-name"') == 1


def test_a_client_without_tls_gets_nothing(rig: Rig) -> None:
    info = rig.attach(rig.volume())
    nbdclient.write(info, 0, MiB, 0x77)
    assert attacker.gets_nothing(attacker.plain(info)) == []
    # Every option a plain client may send before TLS, by hand: each is
    # refused with "TLS required", and no byte names the export.
    data = info["data"]
    got = probe(data["host"], data["port"], data["export_name"])
    assert got.replies == {
        "list": [ERR_TLS_REQD],
        "info": [ERR_TLS_REQD],
        "go": [ERR_TLS_REQD],
    }
    assert not got.export_name_answered
    assert data["export_name"].encode() not in got.received
    assert b"\x77" * 16 not in got.received


def test_a_guessed_key_gets_nothing(rig: Rig) -> None:
    info = rig.attach(rig.volume())
    for key in attacker.guessed_keys(info):
        assert attacker.gets_nothing(attacker.with_key(info, key)) == []


def test_another_attachments_key_gets_nothing(rig: Rig) -> None:
    mine = rig.attach(rig.volume(), host="compute-1")
    theirs = rig.attach(rig.volume(), host="compute-2")
    also_mine = rig.attach(rig.volume(), host="compute-1")
    for other in (theirs, also_mine):
        stolen = attacker.with_key(mine, other["data"]["tls"])
        assert attacker.gets_nothing(stolen) == []
        assert nbdclient.reachable(other)
    assert nbdclient.reachable(mine)


def test_detach_refuses_the_key_at_once(rig: Rig) -> None:
    volume = rig.volume()
    first = rig.attach(volume)
    rig.detach(volume)
    assert not nbdclient.reachable(first)
    second = rig.attach(volume)  # a new attachment, a new key
    assert second["data"]["tls"] != first["data"]["tls"]
    on_new_export = attacker.with_key(second, first["data"]["tls"])
    assert attacker.gets_nothing(on_new_export) == []
    assert nbdclient.reachable(second)
    rig.detach(volume, host=None)  # force, every connection
    assert not nbdclient.reachable(second)


def test_delete_and_revert_never_outlive_the_key(rig: Rig) -> None:
    volume = rig.volume()
    info = rig.attach(volume)
    snapshot = {"id": str(uuid.uuid4()), "volume_id": volume["id"]}
    rig.api.create_snapshot(rig.server, snapshot)
    rig.notifications.wait_event("snapshot.create.end", snapshot["id"])
    rig.api.revert_to_snapshot(volume, snapshot)
    rig.notifications.wait_event("volume.revert.error", volume["id"])
    rig.api.delete_volume(volume)
    rig.notifications.wait_event("volume.delete.error", volume["id"])
    # Both refused while attached: the volume is there, its key still works.
    assert rig.api.get_volume(rig.server, volume["id"])["status"] == "in-use"
    assert nbdclient.reachable(info)
    rig.detach(volume)
    assert not nbdclient.reachable(info)
    rig.api.delete_snapshot(rig.server, snapshot)
    rig.notifications.wait_event("snapshot.delete.end", snapshot["id"])
    rig.api.delete_volume(volume)
    rig.notifications.wait_event("volume.delete.end", volume["id"])
    with pytest.raises(exception.VolumeNotFound):
        rig.api.get_volume(rig.server, volume["id"])


def test_a_restart_serves_the_same_key(rig: Rig) -> None:
    volume = rig.volume()
    info = rig.attach(volume)
    nbdclient.write(info, MiB, MiB, 0x42)
    rig.stop()
    # The unit's KillMode=mixed takes the exports down with the worker, and
    # the key files go too: the next start has only its database.
    rig.kill_exports()
    for key_dir in rig.nbd_dir.glob("*.tls"):
        shutil.rmtree(key_dir)
    rig.start()
    wait_until(lambda: nbdclient.reachable(info), "served again")
    assert nbdclient.holds(info, MiB, MiB, 0x42)
    assert rig.attach(volume) == info  # the same connector: the same key


def test_a_restart_without_the_attachment_ends_the_key(rig: Rig) -> None:
    volume = rig.volume()
    info = rig.attach(volume)
    rig.stop()
    # As if the attachment had been lost from the database meanwhile: the
    # export it left running must not go on letting its key in.
    with sqlite3.connect(rig.database) as db:
        db.execute("DELETE FROM attachments WHERE volume_id = ?", (volume["id"],))
    rig.start()
    wait_until(lambda: not any(rig.nbd_dir.iterdir()), "pruned")
    assert attacker.gets_nothing(info) == []
    assert list(rig.nbd_dir.iterdir()) == []


def test_a_plain_export_is_an_explicit_choice(rig: Rig) -> None:
    """nbd_tls = none serves plain NBD, and the worker says so at start."""
    rig.stop()
    config = rig.worker.config.read_text()
    rig.worker.config.write_text(
        config.replace("nbd_host = 127.0.0.1", "nbd_host = 127.0.0.1\nnbd_tls = none")
    )
    rig.start()
    assert "nbd_tls = none" in rig.worker.log()
    info = rig.attach(rig.volume())
    assert "tls" not in info["data"]
    access = nbd_access.prepare(info["data"], "/nonexistent")
    assert access.psk_file is None
    assert nbdclient.reachable(info)
