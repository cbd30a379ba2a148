"""Secrets never reach the log: the broker's and the database's passwords,
with debug logging on, through start, work, a refused request and stop."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import require_tool
from tests.functional.conftest import new_volume
from tests.unit.state.conftest import pg_url  # noqa: F401 - a fixture
from volworker import exception
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import Worker


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)


@pytest.fixture
def broker_user() -> Iterator[tuple[str, str]]:
    """A RabbitMQ user of its own with a password no other text contains."""
    require_tool("rabbitmqctl", "rabbitmq-server")
    user, password = f"vw-{uuid.uuid4().hex[:8]}", f"Br0ker-{uuid.uuid4().hex}"
    _rabbitmqctl("add_user", user, password)
    try:
        _rabbitmqctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
        yield user, password
    finally:
        _rabbitmqctl("delete_user", user)


def _wait_status(api: VolumeAPI, server: str, volume_id: str, status: str) -> None:
    deadline = time.monotonic() + 60
    while api.get_volume(server, volume_id)["status"] != status:
        assert time.monotonic() < deadline, f"{volume_id} never became {status}"
        time.sleep(0.1)


def test_passwords_never_reach_the_log(
    make_worker: Callable[..., Worker],
    client: Callable[..., VolumeAPI],
    broker_user: tuple[str, str],
    pg_url: str,  # noqa: F811 - the fixture imported above
) -> None:
    user, broker_password = broker_user
    db_password = f"Db-{uuid.uuid4().hex}"
    # The local PostgreSQL trusts loopback; the password is sent along
    # and ignored, which is all this test needs.
    db_url = pg_url.replace("postgres@", f"postgres:{db_password}@", 1)
    worker = make_worker(
        {"b1": {"volume_driver": "fake"}},
        defaults={
            "debug": True,
            "transport_url": f"rabbit://{user}:{broker_password}@127.0.0.1:5672/",
        },
        extra={"database": {"connection": db_url}},
    )
    worker.start().wait_ready()
    api = client(worker)
    server = worker.server("b1")
    volume = new_volume(worker, "b1")
    api.create_volume(volume)
    _wait_status(api, server, volume["id"], "available")
    with pytest.raises(exception.VolumeNotFound):
        api.get_volume(server, str(uuid.uuid4()))
    assert worker.stop() == 0

    log = worker.log()
    assert "driver.create_volume took" in log, "debug logging was not on"
    assert broker_password not in log
    assert db_password not in log
