"""A failed call's reply, as a plain oslo.messaging client sees it (one that
allows no exception module, so it gets a RemoteError): the contract's error
name and message, no traceback, no path of the worker's installation. Also
when the driver fails in a way the contract does not foresee."""

from __future__ import annotations

import pathlib
import site
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import oslo_messaging
import pytest
from oslo_config import cfg

from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import RABBIT_URL, Worker

ROOT = pathlib.Path(__file__).resolve().parents[2]
FAULTY = {
    "volume_driver": "fake",
    "fake_failures": "initialize_connection:RuntimeError,"
    "get_manageable_volumes:KeyError,get_volume_stats:ZeroDivisionError",
    "fake_healthy_calls": "get_volume_stats:1",
}


class PlainClient:
    """oslo.messaging's own RPC client, allowing no remote exception module."""

    def __init__(self, topic: str) -> None:
        self.transport = oslo_messaging.get_rpc_transport(cfg.CONF, url=RABBIT_URL)
        self.topic = topic

    def call(self, server: str, method: str, **kwargs: Any) -> Any:
        target = oslo_messaging.Target(topic=self.topic, server=server, version="1.0")
        client = oslo_messaging.get_rpc_client(self.transport, target, timeout=30)
        return client.call({}, method, **kwargs)

    def fails(self, server: str, method: str, **kwargs: Any) -> tuple[str, str]:
        """The error's name and everything the caller got as text."""
        with pytest.raises(oslo_messaging.RemoteError) as caught:
            self.call(server, method, **kwargs)
        error = caught.value
        return str(error.exc_type), "\n".join([str(error.value), *error.traceback])


@pytest.fixture
def plain(
    make_worker: Callable[..., Worker], client: Callable[[Worker], VolumeAPI]
) -> Iterator[tuple[Worker, PlainClient, VolumeAPI]]:
    worker = make_worker({"fake1": {"volume_driver": "fake"}, "faulty": FAULTY})
    worker.start().wait_ready()
    found = PlainClient(worker.topic)
    yield worker, found, client(worker)
    found.transport.cleanup()
    assert worker.stop() == 0


def _insides() -> list[str]:
    """What a reply must never show: the worker's code and where it lives."""
    return [
        "Traceback",
        'File "',
        str(ROOT),
        sys.prefix,
        *site.getsitepackages(),
    ]


def test_failed_calls_tell_the_contract_name_only(
    plain: tuple[Worker, PlainClient, VolumeAPI],
) -> None:
    worker, client, api = plain
    fake, faulty = worker.server("fake1"), worker.server("faulty")
    volume = {"id": str(uuid.uuid4()), "size": 1, "host": faulty}
    api.create_volume(volume)
    cases = [
        ("VolumeNotFound", fake, "get_volume", {"volume_id": str(uuid.uuid4())}),
        ("InvalidInput", fake, "get_volume", {"volume_id": "../../etc/passwd"}),
        ("InvalidInput", fake, "list_volumes", {"marker": str(uuid.uuid4())}),
        ("NotSupported", fake, "rm_rf", {}),
        ("InvalidInput", fake, "get_volume", {"volume_id": "x", "extra": 1}),
        # The driver fails with errors outside the contract.
        (
            "VolumeBackendAPIException",
            faulty,
            "initialize_connection",
            {"volume": volume, "connector": {"host": "h"}},
        ),
        ("VolumeBackendAPIException", faulty, "get_manageable_volumes", {}),
        ("VolumeBackendAPIException", faulty, "get_capabilities", {"discover": True}),
    ]
    for name, server, method, kwargs in cases:
        got, text = client.fails(server, method, **kwargs)
        assert got == name, (method, got, text)
        shown = [inside for inside in _insides() if inside in text]
        assert not shown, (method, shown, text)
    # The worker's own log keeps the story of the unexpected ones.
    assert "RuntimeError" in worker.log() and "Traceback" in worker.log()


def test_a_good_call_is_answered(plain: tuple[Worker, PlainClient, VolumeAPI]) -> None:
    worker, client, api = plain
    server = worker.server("fake1")
    volume = {"id": str(uuid.uuid4()), "size": 1, "host": server}
    api.create_volume(volume)
    record = client.call(server, "get_volume", volume_id=volume["id"])
    assert record["id"] == volume["id"]
