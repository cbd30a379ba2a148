"""After kill -9, every journaled operation is finished or rolled back at the
next start, and nothing accepted is lost."""

from __future__ import annotations

import signal
from collections.abc import Callable

import oslo_messaging
import pytest

from tests.functional.conftest import new_volume
from tests.functional.test_lifecycle import wait_status
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker


def test_kill_during_work_then_restart_finishes_everything(
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[..., Notifications],
) -> None:
    worker = make_worker(
        {"b1": {"volume_driver": "fake", "fake_method_latency": "create_volume:1"}},
        defaults={"max_concurrent_operations": 2},
    )
    worker.start().wait_ready()
    api, events = client(worker), notifications(worker)
    volumes = [new_volume(worker, "b1") for _ in range(8)]
    for volume in volumes:
        api.create_volume(volume)
    events.wait_for(lambda _: len(events.events("volume.create.start")) >= 2)
    worker.signal(signal.SIGKILL)
    worker.wait(10)

    worker.start().wait_ready()
    for volume in volumes:
        wait_status(api, worker.server("b1"), volume["id"], "available")
    assert "journaled operation(s) to finish" in worker.log()
    assert events.count(".error") == 0


def test_interrupted_attach_is_rolled_back(
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[..., Notifications],
) -> None:
    worker = make_worker(
        {
            "b1": {
                "volume_driver": "fake",
                "fake_method_latency": "initialize_connection:30",
            }
        }
    )
    worker.start().wait_ready()
    api, events = client(worker), notifications(worker)
    volume = new_volume(worker, "b1")
    api.create_volume(volume)
    wait_status(api, worker.server("b1"), volume["id"], "available")
    quick = VolumeAPI(api.transport, topic=worker.topic, timeout=1)
    with pytest.raises(oslo_messaging.MessagingTimeout):
        quick.initialize_connection(volume, {"host": "c1"})
    events.wait_event("volume.attach.start", volume["id"])
    worker.signal(signal.SIGKILL)
    worker.wait(10)

    worker.start().wait_ready()
    event = events.wait_event("volume.attach.error", volume["id"])
    assert "restarted" in event["payload"]["error"]
    assert api.get_volume(worker.server("b1"), volume["id"])["status"] == "available"
