"""etc/volworker/volworker.conf, the developer quick start, works as the
README says: state under the path given in the environment, one file
backend on the local RabbitMQ, started from any directory."""

from __future__ import annotations

import pathlib
import signal
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import require_service
from tests.deploy.conftest import ROOT
from tests.deploy.options import read_config, unknown_options
from tests.deploy.units import UnitProcess, venv_bin
from volworker.rpc.rpcapi import VolumeAPI

QUICKSTART = ROOT / "etc" / "volworker" / "volworker.conf"


def test_quickstart_sets_only_known_options() -> None:
    assert unknown_options(QUICKSTART) == []


def test_unknown_options_are_caught(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "volworker.conf"
    config.write_text("[DEFAULT]\nstate_pth = /x\n[file]\nfile_pool = a:/b\n")
    assert unknown_options(config) == ["DEFAULT.state_pth", "file.file_pool"]


def test_quickstart_leaves_state_path_to_the_command_line() -> None:
    parser = read_config(QUICKSTART)
    assert not parser.has_option("DEFAULT", "state_path")
    assert parser.get("DEFAULT", "enabled_backends") == "file"
    assert parser.get("file", "volume_driver") == "file"


@pytest.fixture
def quickstart(tmp_path: pathlib.Path) -> Iterator[UnitProcess]:
    require_service("rabbitmq", 5672)
    proc = UnitProcess(tmp_path, {}, name="quickstart")
    yield proc
    proc.close()


def _launch(proc: UnitProcess, state: pathlib.Path, *args: str) -> UnitProcess:
    elsewhere = proc.dir / "cwd"
    elsewhere.mkdir(exist_ok=True)
    env = {
        # what scripts/run sets; the two others keep tests off the real topic
        "OS_DEFAULT__STATE_PATH": str(state),
        "OS_DEFAULT__HOST": proc.host,
        "OS_DEFAULT__VOLUME_TOPIC": proc.topic,
    }
    argv = [venv_bin("volworker"), "--config-file", str(QUICKSTART), *args]
    return proc.launch(argv, env, cwd=elsewhere)


def test_quickstart_serves_a_file_backend(
    tmp_path: pathlib.Path, quickstart: UnitProcess
) -> None:
    state = tmp_path / "state"
    _launch(quickstart, state).wait_ready(60)
    assert "STATUS=Serving file" in quickstart.notified
    server = quickstart.server("file")
    api = VolumeAPI.from_url(
        "rabbit://guest:guest@127.0.0.1:5672/", topic=quickstart.topic, timeout=30
    )
    try:
        volume_id = str(uuid.uuid4())
        api.create_volume({"id": volume_id, "size": 1, "host": server})
        deadline = time.monotonic() + 30
        while (record := api.get_volume(server, volume_id))["status"] == "creating":
            assert time.monotonic() < deadline, record
            time.sleep(0.05)
    finally:
        api.close()
    assert record["status"] == "available", record
    assert record["host"] == f"{server}#default"
    pool = state / "volumes"
    assert [p for p in pool.iterdir() if volume_id in p.name], list(pool.iterdir())
    assert not (quickstart.dir / "cwd" / "state").exists()
    quickstart.signal(signal.SIGTERM)
    assert quickstart.wait(60) == 0, quickstart.log()


def test_quickstart_serves_the_fake_backend_alone(
    tmp_path: pathlib.Path, quickstart: UnitProcess
) -> None:
    _launch(quickstart, tmp_path / "state", "--backend", "fake").wait_ready(60)
    assert "STATUS=Serving fake" in quickstart.notified
    quickstart.signal(signal.SIGTERM)
    assert quickstart.wait(60) == 0, quickstart.log()
