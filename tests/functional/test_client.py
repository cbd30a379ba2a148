"""``volworker-client`` as a person runs it: a real process against real
workers (fake and file drivers) on the real RabbitMQ, judged by what it
prints and how it exits."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

import pytest

from tests.contract import nbdclient
from volworker.testing.worker import RABBIT_URL, Worker

GiB = 1024**3
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def client(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``volworker-client`` with ``args``; its environment gets ``env``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("VOLWORKER_")}
    return subprocess.run(
        [sys.executable, "-m", "volworker.cmd.client", *args],
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "", result.stderr
    return result.stdout


def fields(table: str) -> dict[str, str]:
    """A record as printed for people: ``field  value`` per line."""
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in table.splitlines())


def rows(table: str) -> list[dict[str, str]]:
    """A table as printed for people: headings, then one row per object."""
    header, *body = (re.split(r"\s{2,}", line) for line in table.splitlines())
    return [dict(zip(header, line, strict=True)) for line in body]


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed run prints, and nothing that looks like a trace."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def fake_worker(make_worker: Callable[..., Worker]) -> Worker:
    """b1 works; b2 fails every extend."""
    return (
        make_worker(
            {
                "b1": {"volume_driver": "fake", "fake_pools": "p1,p2"},
                "b2": {
                    "volume_driver": "fake",
                    "fake_failures": "extend_volume:VolumeBackendAPIException",
                },
            }
        )
        .start()
        .wait_ready()
    )


def test_volume_life_on_fake(fake_worker: Worker) -> None:
    env = {
        "VOLWORKER_TRANSPORT_URL": RABBIT_URL,
        "VOLWORKER_HOST": fake_worker.server("b1"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return client("--topic", fake_worker.topic, *args, env=env)

    created = fields(ok(run("create", "--size", "1", "--name", "data", "--wait")))
    volume_id = created["id"]
    assert uuid.UUID(volume_id)
    assert created["status"] == "available"
    assert created["name"] == "data"
    assert created["host"] == f"{fake_worker.server('b1')}#p1"

    # global options after the subcommand, a pool, an id of one's own
    other_id = str(uuid.uuid4())
    printed = ok(run("create", "--id", other_id, "--pool", "p2", "--format", "json"))
    assert json.loads(printed) == {"id": other_id}

    listed = rows(ok(run("list")))
    assert [r["ID"] for r in listed] == [volume_id, other_id]
    assert listed[0]["NAME"] == "data" and listed[0]["SIZE"] == "1"
    assert listed[1]["HOST"] == f"{fake_worker.server('b1')}#p2"
    assert [v["id"] for v in json.loads(ok(run("list", "--format", "json")))] == [
        volume_id,
        other_id,
    ]

    extended = fields(ok(run("extend", volume_id, "2", "--wait")))
    assert (extended["status"], extended["size"]) == ("available", "2")

    snap = json.loads(ok(run("--format", "json", "snapshot", volume_id, "--wait")))
    assert snap["status"] == "available" and snap["volume_id"] == volume_id
    assert fields(ok(run("snapshot-show", snap["id"])))["size"] == "2"

    # a refused delete (the volume has a snapshot) leaves the record as it
    # was; the wait says so when its time is up
    refused = run("delete", volume_id, "--wait", "--wait-timeout", "1")
    assert refused.returncode == 2
    assert "may have refused it" in error_line(refused)

    reverted = fields(ok(run("revert", volume_id, snap["id"], "--wait")))
    assert reverted["status"] == "available"
    assert reverted["updated_at"] != extended["updated_at"]

    gone = fields(ok(run("snapshot-delete", snap["id"], "--wait")))
    assert gone == {"id": snap["id"], "status": "deleted"}
    for vid in (volume_id, other_id):
        assert fields(ok(run("delete", vid, "--wait")))["status"] == "deleted"
    assert ok(run("list")).splitlines() == ["ID  NAME  STATUS  SIZE  HOST"]

    missing = run("show", volume_id)
    assert missing.returncode == 1 and missing.stdout == ""
    assert error_line(missing) == (
        f"error: VolumeNotFound: Volume {volume_id} could not be found."
    )


def test_failed_operation_exits_1_with_the_error(fake_worker: Worker) -> None:
    common = ["--url", RABBIT_URL, "--topic", fake_worker.topic]
    common += ["--host", fake_worker.server("b2")]
    volume_id = ok(client(*common, "create")).strip()

    failed = client(*common, "extend", volume_id, "3", "--wait")
    assert failed.returncode == 1
    assert fields(failed.stdout)["status"] == "error_extending"
    assert error_line(failed) == (
        f"error: volume {volume_id} is error_extending: fake driver: "
        "extend_volume fails as configured (VolumeBackendAPIException)"
    )
    # a wait on a volume that was in an error status before waits for this
    # request's outcome, not that of the earlier one
    deleted = client(*common, "delete", volume_id, "--wait")
    assert fields(ok(deleted)) == {"id": volume_id, "status": "deleted"}

    snapshot = client(*common, "snapshot-show", UNKNOWN_ID)
    assert snapshot.returncode == 1
    assert error_line(snapshot) == (
        f"error: SnapshotNotFound: Snapshot {UNKNOWN_ID} could not be found."
    )
    bad_id = client(*common, "show", "not-a-uuid")
    assert bad_id.returncode == 1
    assert error_line(bad_id).startswith("error: InvalidInput: ")


def test_attach_and_manage_on_file(
    tmp_path: pathlib.Path, make_worker: Callable[..., Worker]
) -> None:
    pool = tmp_path / "p1"
    worker = make_worker(
        {"b1": {"volume_driver": "file", "file_pools": f"p1:{pool}"}}
    ).start()
    worker.wait_ready()

    psk_dir = tmp_path / "psk"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # everything from the worker's own configuration file
        env = {"VOLWORKER_PSK_DIR": str(psk_dir)}
        return client("--config-file", str(worker.config), *args, env=env)

    volume_id = fields(ok(run("create", "--size", "1", "--wait")))["id"]

    info = json.loads(ok(run("attach", volume_id, "--format", "json")))
    assert info["driver_volume_type"] == "nbd"
    assert nbdclient.size(info) == 1 * GiB
    key = info["data"]["tls"]
    shown = fields(ok(run("attach", volume_id)))  # again: the same export
    assert shown["driver_volume_type"] == "nbd"
    assert shown["data.port"] == str(info["data"]["port"])
    assert shown["data.tls.psk_identity"] == key["psk_identity"]
    assert key["psk_key"] not in str(shown)  # for people: the file, not the key
    key_file = pathlib.Path(shown["data.tls.psk_file"])
    assert key_file.parent.parent == psk_dir
    assert key_file.read_text() == f"{key['psk_identity']}:{key['psk_key']}\n"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.parent.stat().st_mode & 0o777 == 0o700
    uri = ok(run("attach", volume_id, "--format", "uri")).strip()
    assert uri == shown["uri"] and uri.startswith("nbds://")
    size = subprocess.run(["nbdinfo", "--size", uri], capture_output=True, text=True)
    assert size.stdout.strip() == str(GiB), size.stderr
    qemu = shlex.split(ok(run("attach", volume_id, "--format", "qemu")))
    read = subprocess.run(
        ["qemu-io", "-r", *qemu, "-c", "read -P 0 0 4k"], capture_output=True, text=True
    )
    assert "read 4096/4096" in read.stdout, read.stdout + read.stderr
    assert fields(ok(run("show", volume_id)))["status"] == "in-use"

    attached = run("delete", volume_id)
    assert attached.returncode == 1
    assert "attached" in error_line(attached)

    assert fields(ok(run("detach", volume_id)))["status"] == "available"
    assert list(psk_dir.iterdir()) == []  # the key is gone with the attachment
    refused = subprocess.run(["nbdinfo", "--size", uri], capture_output=True)
    assert refused.returncode != 0

    # a file someone left in the pool can be adopted
    with open(pool / "legacy.img", "wb") as legacy:
        legacy.truncate(GiB // 2)
    offered = rows(ok(run("manageable")))
    legacy_row = next(r for r in offered if r["REFERENCE"] == "source-name=legacy.img")
    assert legacy_row["SIZE"] == "1" and legacy_row["SAFE_TO_MANAGE"] == "yes"
    managed = fields(ok(run("manage", "--source-name", "legacy.img", "--wait")))
    assert (managed["status"], managed["size"]) == ("available", "1")
    assert not (pool / "legacy.img").exists()

    snapshots = json.loads(ok(run("manageable", "--snapshots", "--format", "json")))
    assert snapshots == []

    for vid in (volume_id, managed["id"]):
        assert fields(ok(run("delete", vid, "--wait")))["status"] == "deleted"


def test_no_worker_no_broker_bad_usage() -> None:
    started = time.monotonic()
    nobody = client(
        "--url", RABBIT_URL, "--host", "nobody@none", "--topic", "vwtest-nobody",
        "--timeout", "2", "show", UNKNOWN_ID,
    )  # fmt: skip
    assert nobody.returncode == 2
    assert time.monotonic() - started < 15
    assert error_line(nobody) == (
        "error: no reply from nobody@none on topic 'vwtest-nobody' within 2s: "
        "is a worker serving it, and ready?"
    )

    no_broker = client(
        "--url", "rabbit://guest:secret@127.0.0.1:1/", "--host", "a@b", "list"
    )  # fmt: skip
    assert no_broker.returncode == 2
    line = error_line(no_broker)
    assert line.startswith("error: cannot reach the message broker at 127.0.0.1:1")
    assert "secret" not in line

    no_host = client("--url", RABBIT_URL, "list")
    assert no_host.returncode == 2
    assert "--host HOST@BACKEND" in error_line(no_host)

    for usage in (["extend"], ["create", "--size", "0"], ["--host", "nopool", "list"]):
        bad = client(*usage)
        assert bad.returncode == 2, usage
        assert "usage: volworker-client" in bad.stderr
        assert "Traceback" not in bad.stderr


def test_group_commands(fake_worker: Worker) -> None:
    env = {
        "VOLWORKER_TRANSPORT_URL": RABBIT_URL,
        "VOLWORKER_HOST": fake_worker.server("b1"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return client("--topic", fake_worker.topic, *args, env=env)

    volumes = [fields(ok(run("create", "--size", "2", "--wait")))["id"] for _ in "ab"]
    made = json.loads(
        ok(
            run(
                "group",
                "create",
                "--name",
                "db",
                "--volume",
                volumes[0],
                "--volume",
                volumes[1],
                "--wait",
                "--format",
                "json",
            )
        )
    )
    assert (made["status"], made["name"]) == ("available", "db")
    assert sorted(made["volume_ids"]) == sorted(volumes)
    listed = rows(ok(run("group", "list")))
    assert [(r["ID"], r["VOLUMES"]) for r in listed] == [(made["id"], "2")]

    taken = json.loads(
        ok(run("group", "snapshot", made["id"], "--wait", "--format", "json"))
    )
    assert taken["status"] == "available" and len(taken["snapshot_ids"]) == 2
    copy = json.loads(
        ok(
            run(
                "group",
                "create-from-src",
                "--group-snapshot",
                taken["id"],
                "--wait",
                "--format",
                "json",
            )
        )
    )
    assert copy["status"] == "available" and len(copy["volume_ids"]) == 2
    sizes = {
        json.loads(ok(run("show", v, "--format", "json")))["size"]
        for v in copy["volume_ids"]
    }
    assert sizes == {2}

    refused = run("group", "delete", made["id"], "--wait", "--wait-timeout", "3")
    assert refused.returncode != 0  # it has volumes, and snapshots of them
    ok(run("group", "snapshot-delete", taken["id"], "--wait"))
    for group in (made["id"], copy["id"]):
        ok(run("group", "delete", group, "--delete-volumes", "--wait"))
    assert json.loads(ok(run("list", "--format", "json"))) == []
    assert error_line(run("group", "show", UNKNOWN_ID)).startswith(
        "error: GroupNotFound"
    )
