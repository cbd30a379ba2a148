"""Graceful stop: SIGTERM (or SIGINT) stops consuming, lets running work
finish, exits 0; accepted work that had not started is done after restart."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from tests.functional.conftest import new_volume
from tests.functional.test_lifecycle import wait_status
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_finishes_running_work_and_keeps_the_rest(
    sig: signal.Signals,
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[..., Notifications],
) -> None:
    worker = make_worker(
        {"b1": {"volume_driver": "fake", "fake_method_latency": "create_volume:1.5"}},
        defaults={"max_concurrent_operations": 2},
    )
    worker.start().wait_ready()
    api, events = client(worker), notifications(worker)
    volumes = [new_volume(worker, "b1") for _ in range(6)]
    for volume in volumes:
        api.create_volume(volume)
    events.wait_for(lambda _: len(events.events("volume.create.start")) >= 2)
    running = [m["payload"]["id"] for m in events.events("volume.create.start")]

    worker.signal(sig)
    assert worker.wait(30) == 0
    assert "STOPPING=1" in worker.notified
    for volume_id in running:  # finished before the exit
        events.wait_event("volume.create.end", volume_id, timeout=5)
    assert len(events.events("volume.create.end")) == len(running) < len(volumes)

    worker.start().wait_ready()
    for volume in volumes:
        wait_status(api, worker.server("b1"), volume["id"], "available")
    assert events.count(".error") == 0
    assert worker.stop() == 0
