"""A running worker to attack on its data path: the file driver behind
RabbitMQ, logging at debug level, with a listener on its notifications and
on its capability reports, each test with topics of its own."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import require_service, require_tool
from tests.faults.audit import nbd_servers
from tests.functional.test_lifecycle import wait_status
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications, Reports
from volworker.testing.worker import RABBIT_URL, Worker

BACKEND = "sec"


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Exports are restored after READY=1, in the background: wait for it."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not {what} after {timeout:g}s"
        time.sleep(0.1)


class Rig:
    """One worker and what watches it."""

    def __init__(self, tmp_path: pathlib.Path) -> None:
        self.tmp_path = tmp_path
        self.scheduler_topic = f"vwsec-sched-{uuid.uuid4().hex[:8]}"
        self.worker = Worker(
            tmp_path,
            {
                BACKEND: {
                    "volume_driver": "file",
                    "file_pools": f"p:{tmp_path / 'pool'}",
                    "nbd_host": "127.0.0.1",
                }
            },
            defaults={"debug": True, "scheduler_topic": self.scheduler_topic},
        )
        self.server = self.worker.server(BACKEND)
        self.reports = Reports(self.scheduler_topic)
        self.notifications = Notifications(f"volworker.{self.worker.host}@")
        self.api = VolumeAPI.from_url(RABBIT_URL, topic=self.worker.topic, timeout=30)

    @property
    def state_dir(self) -> pathlib.Path:
        return self.worker.dir / "state"

    @property
    def database(self) -> pathlib.Path:
        return self.state_dir / "volworker.sqlite"

    @property
    def nbd_dir(self) -> pathlib.Path:
        """The driver's export records and key directories."""
        return self.state_dir / BACKEND / "nbd"

    def start(self) -> Rig:
        self.worker.start().wait_ready(60)
        return self

    def stop(self) -> None:
        assert self.worker.stop() == 0, self.worker.log()

    def volume(self) -> dict[str, Any]:
        volume = {"id": str(uuid.uuid4()), "size": 1, "host": self.server}
        self.api.create_volume(volume)
        wait_status(self.api, self.server, volume["id"], "available")
        return volume

    def attach(self, volume: dict[str, Any], host: str = "compute-1") -> dict[str, Any]:
        return self.api.initialize_connection(volume, {"host": host})

    def detach(self, volume: dict[str, Any], host: str | None = "compute-1") -> None:
        connector = None if host is None else {"host": host}
        self.api.terminate_connection(volume, connector, force=host is None)

    def kill_exports(self) -> None:
        """End every qemu-nbd of the worker, as systemd's KillMode=mixed
        does when the unit stops."""
        for pid in nbd_servers(self.worker.dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while nbd_servers(self.worker.dir) and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.api.close()
        self.reports.close()
        self.notifications.close()
        self.worker.close()
        self.kill_exports()


@pytest.fixture
def rig(tmp_path: pathlib.Path) -> Iterator[Rig]:
    require_service("rabbitmq", 5672)
    for tool, package in (
        ("qemu-io", "qemu-utils"),
        ("qemu-nbd", "qemu-utils"),
        ("nbdinfo", "libnbd-bin"),
        ("nbdcopy", "libnbd-bin"),
    ):
        require_tool(tool, package)
    made = Rig(tmp_path)
    try:
        yield made.start()
    finally:
        made.close()
