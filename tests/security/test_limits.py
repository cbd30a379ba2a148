"""Sizes a caller cannot push past: connectors of any size or depth are
refused; list_volumes and the manageable listings return at most 1000
entries with or without a limit. The worker goes on serving."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.security.conftest import BACKEND
from volworker import exception
from volworker.rpc.endpoint import LIST_LIMIT_MAX
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import Worker

CONNECTOR = {
    "host": "compute-1",
    "ip": "10.0.0.7",
    "initiator": "iqn.1993-08.org.debian:01:abc",
    "wwpns": ["50014380186af83c", "50014380186af83e"],
    "multipath": False,
}


def _deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("extra", "what"),
    [
        ({"blob": "x" * 100_000}, "larger than"),
        ({"paths": _deep(50)}, "nested deeper"),
        ({f"key{i}": i for i in range(1000)}, "more than"),
        ({"wwpns": list(range(10_000))}, "more than"),
    ],
    ids=["large", "deep", "wide", "long"],
)
def test_a_connector_is_bounded(
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    extra: dict[str, Any],
    what: str,
) -> None:
    worker = make_worker({"fake1": {"volume_driver": "fake"}}).start().wait_ready()
    api = client(worker)
    volume = {"id": str(uuid.uuid4()), "size": 1, "host": worker.server("fake1")}
    api.create_volume(volume)
    with pytest.raises(exception.InvalidInput, match=what):
        api.initialize_connection(volume, {**CONNECTOR, **extra})
    info = api.initialize_connection(volume, CONNECTOR)
    assert info["driver_volume_type"]
    assert worker.stop() == 0


def test_list_volumes_is_capped(
    make_worker: Callable[..., Worker], client: Callable[[Worker], VolumeAPI]
) -> None:
    worker = make_worker({"fake1": {"volume_driver": "fake"}}).start().wait_ready()
    api = client(worker)
    server = worker.server("fake1")
    for _ in range(LIST_LIMIT_MAX + 5):
        api.create_volume({"id": str(uuid.uuid4()), "size": 1, "host": server})
    first = api.list_volumes(server)
    assert len(first) == LIST_LIMIT_MAX
    rest = api.list_volumes(server, marker=first[-1]["id"])
    assert len(rest) == 5
    with pytest.raises(exception.InvalidInput, match="at most"):
        api.list_volumes(server, limit=LIST_LIMIT_MAX + 1)
    assert worker.stop() == 0


def test_manageable_listings_are_capped(
    tmp_path: pathlib.Path,
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()
    for n in range(LIST_LIMIT_MAX + 5):
        (pool / f"legacy-{n:05d}").touch()
    backend = {"volume_driver": "file", "file_pools": f"p:{pool}"}
    worker = make_worker({BACKEND: backend}).start().wait_ready()
    api = client(worker)
    server = worker.server(BACKEND)
    assert len(api.get_manageable_volumes(server)) == LIST_LIMIT_MAX
    assert len(api.get_manageable_volumes(server, limit=10)) == 10
    assert worker.stop() == 0
