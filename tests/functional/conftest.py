"""Fixtures for functional tests: real volworker processes on the real
RabbitMQ, driven only over the wire."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import require_service
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications, Reports
from volworker.testing.worker import RABBIT_URL, Worker


@pytest.fixture(autouse=True)
def _broker() -> None:
    require_service("rabbitmq", 5672)


@pytest.fixture
def make_worker(tmp_path: pathlib.Path) -> Iterator[Callable[..., Worker]]:
    """Build workers; every one is killed at the end of the test."""
    workers: list[Worker] = []

    def make(backends: dict[str, dict[str, Any]], **kwargs: Any) -> Worker:
        kwargs.setdefault("name", f"worker{len(workers)}")
        worker = Worker(tmp_path, backends, **kwargs)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.close()


@pytest.fixture
def client() -> Iterator[Callable[[Worker], VolumeAPI]]:
    apis: list[VolumeAPI] = []

    def make(worker: Worker, **kwargs: Any) -> VolumeAPI:
        kwargs.setdefault("timeout", 30)
        api = VolumeAPI.from_url(RABBIT_URL, topic=worker.topic, **kwargs)
        apis.append(api)
        return api

    yield make
    for api in apis:
        api.close()


@pytest.fixture
def notifications() -> Iterator[Callable[..., Notifications]]:
    listeners: list[Notifications] = []

    def make(*workers: Worker) -> Notifications:
        listener = Notifications(*(f"volworker.{w.host}@" for w in workers))
        listeners.append(listener)
        return listener

    yield make
    for listener in listeners:
        listener.close()


@pytest.fixture
def scheduler() -> Iterator[tuple[str, Reports]]:
    """A scheduler topic of the test's own and the capability reports
    cast to its fanout."""
    topic = f"vwsched-{uuid.uuid4().hex[:10]}"
    reports = Reports(topic)
    yield topic, reports
    reports.close()


def new_volume(
    worker: Worker, backend: str, size: int = 1, **fields: Any
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "size": size,
        "host": worker.server(backend),
        **fields,
    }


def new_snapshot(volume: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "volume_id": volume["id"], **fields}
