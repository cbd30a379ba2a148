"""What a driver saves per initiator survives the worker: the fake driver
keeps one secret per initiator (as a CHAP secret would be), returned to it
by the worker at the initiator's next attachment, also after a restart
emptied the fake's memory, and never shown to a caller or another backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.functional.conftest import new_volume
from tests.functional.test_lifecycle import wait_status
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import Worker


def _attach(api: VolumeAPI, worker: Worker, backend: str, initiator: str) -> Any:
    volume = new_volume(worker, backend)
    api.create_volume(volume)
    wait_status(api, worker.server(backend), volume["id"], "available")
    return api.initialize_connection(
        volume, {"host": f"compute-{initiator}", "initiator": initiator}
    )


def test_saved_initiator_data_comes_back_after_a_restart(
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
) -> None:
    backends = {"b1": {"volume_driver": "fake"}, "b2": {"volume_driver": "fake"}}
    worker = make_worker(backends)
    worker.start().wait_ready()
    api = client(worker)
    first = _attach(api, worker, "b1", "iqn.2026-11.test:a")
    assert "initiator_updates" not in first
    secret = first["data"]["auth_secret"]
    assert _attach(api, worker, "b1", "iqn.2026-11.test:a")["data"]["auth_secret"] == (
        secret
    )
    other = _attach(api, worker, "b1", "iqn.2026-11.test:b")["data"]["auth_secret"]
    elsewhere = _attach(api, worker, "b2", "iqn.2026-11.test:a")["data"]["auth_secret"]
    assert secret not in (other, elsewhere)

    assert worker.stop() == 0
    worker.start().wait_ready()
    again = _attach(api, worker, "b1", "iqn.2026-11.test:a")
    assert again["data"]["auth_secret"] == secret
