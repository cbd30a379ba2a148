"""The security suite: each attack of issue 12 against a running worker, and
the request that should succeed beside it.

Workers are real processes (volworker.testing.worker) on the shared broker,
or on a private RabbitMQ node (tests/faults/broker.py) where a test stops
the broker or needs TLS.
"""

from __future__ import annotations

import pathlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.faults.broker import PrivateBroker, missing_tools
from tests.functional.conftest import client, make_worker, notifications
from tests.security.rig import rig
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker

__all__ = [
    "client",
    "file_worker",
    "make_worker",
    "notifications",
    "private_broker",
    "rig",
    "settled",
]

BACKEND = "file1"


def require_private_broker() -> None:
    missing = missing_tools()
    if missing:
        message = f"a private RabbitMQ node needs {', '.join(missing)}"
        if IN_CI:
            pytest.fail(message + " (CI=true needs it)")
        pytest.skip(message)


@pytest.fixture
def private_broker(tmp_path: pathlib.Path) -> Iterator[PrivateBroker]:
    require_private_broker()
    node = PrivateBroker(tmp_path / "rabbitmq").start()
    try:
        yield node
    finally:
        node.shutdown()


Setup = tuple[Worker, VolumeAPI, Notifications]


@pytest.fixture
def file_worker(
    tmp_path: pathlib.Path,
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[[Worker], Notifications],
) -> Iterator[Setup]:
    """A worker on one file backend (pool ``tmp_path/pool``), its client and
    its notifications."""
    pool = tmp_path / "pool"
    backend = {"volume_driver": "file", "file_pools": f"p:{pool}"}
    worker = make_worker({BACKEND: backend})
    worker.start().wait_ready()
    yield worker, client(worker), notifications(worker)
    assert worker.stop() == 0


def new_volume(worker: Worker, size: int = 1, **fields: Any) -> dict[str, Any]:
    host = worker.server(BACKEND)
    return {"id": str(uuid.uuid4()), "size": size, "host": host, **fields}


def settled(
    api: VolumeAPI, server: str, volume_id: str, timeout: float = 60
) -> dict[str, Any]:
    """The volume's record once it has left ``creating``."""
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = api.get_volume(server, volume_id)
        if record["status"] != "creating" or time.monotonic() > deadline:
            return record
        time.sleep(0.05)
