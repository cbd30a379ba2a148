"""Bad input and backend failures: each contract error reaches the caller by
name, casts fail with status error and an .error notification, and the
worker goes on serving."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import oslo_messaging
import pytest

from tests.functional.conftest import new_snapshot, new_volume
from tests.functional.test_lifecycle import wait_status
from volworker import exception
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker

FAULTY = {
    "volume_driver": "fake",
    "fake_failures": "create_volume:VolumeSizeExceedsAvailableQuota,"
    "get_manageable_volumes:VolumeBackendAPIException",
}


@pytest.fixture
def setup(
    tmp_path: pathlib.Path,
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[[Worker], Notifications],
) -> Iterator[tuple[Worker, VolumeAPI, Notifications]]:
    worker = make_worker(
        {
            "file1": {"volume_driver": "file", "file_pools": f"p:{tmp_path / 'pool'}"},
            "faulty": FAULTY,
        }
    )
    worker.start().wait_ready()
    yield worker, client(worker), notifications(worker)
    assert worker.stop() == 0


def _raw_call(
    api: VolumeAPI, server: str, method: str, version: str = "1.0", **kw: Any
) -> Any:
    cctxt = api.client.prepare(server=server, version=version, version_cap=version)
    return cctxt.call({}, method, **kw)


def test_call_errors_by_name(setup: tuple[Worker, VolumeAPI, Notifications]) -> None:
    worker, api, events = setup
    server, faulty = worker.server("file1"), worker.server("faulty")
    with pytest.raises(exception.InvalidInput, match="volume_id"):
        api.get_volume(server, "../../etc/passwd")
    with pytest.raises(exception.VolumeNotFound):
        api.get_volume(server, str(uuid.uuid4()))
    with pytest.raises(exception.SnapshotNotFound):
        api.get_snapshot(server, str(uuid.uuid4()))
    with pytest.raises(exception.NotSupported, match="frobnicate"):
        _raw_call(api, server, "frobnicate")
    with pytest.raises(exception.NotSupported, match=r"2\.0"):
        _raw_call(api, server, "get_volume", version="2.0", volume_id=str(uuid.uuid4()))
    with pytest.raises(exception.InvalidInput, match="unexpected keyword"):
        _raw_call(api, server, "get_volume", volume_id=str(uuid.uuid4()), colour="red")
    with pytest.raises(exception.InvalidInput, match="colour"):
        api.get_manageable_volumes(server, sort_keys=["colour"])
    with pytest.raises(
        exception.VolumeBackendAPIException, match="fails as configured"
    ):
        api.get_manageable_volumes(faulty)

    volume = new_volume(worker, "file1")
    api.create_volume(volume)
    wait_status(api, server, volume["id"], "available")
    with pytest.raises(exception.InvalidInput, match=r"connector\.host"):
        api.initialize_connection(volume, {"initiator": "x"})
    api.initialize_connection(volume, {"host": "client-a"})
    with pytest.raises(exception.VolumeIsBusy):
        api.initialize_connection(volume, {"host": "client-b"})
    api.terminate_connection(volume, {"host": "client-a"})

    broken = new_volume(worker, "faulty")
    api.create_volume(broken)
    record = wait_status(api, faulty, broken["id"], "error")
    assert "VolumeSizeExceedsAvailableQuota" in record["error"]
    with pytest.raises(exception.InvalidVolume, match="error"):
        api.initialize_connection(broken, {"host": "client-a"})
    assert events.count(".error") >= 1


def test_bad_casts_fail_visibly_and_the_worker_goes_on(
    setup: tuple[Worker, VolumeAPI, Notifications],
) -> None:
    worker, api, events = setup
    server = worker.server("file1")

    negative = new_volume(worker, "file1", size=-5)
    api.create_volume(negative)
    event = events.wait_event("volume.create.error", negative["id"])
    assert "volume.size -5" in event["payload"]["error"]
    record = api.get_volume(server, negative["id"])
    assert record["status"] == "error" and "volume.size" in record["error"]

    api.create_volume({"id": "../../etc", "size": 1, "host": server})
    event = events.wait_event("volume.create.error", "../../etc")
    assert "not a UUID" in event["payload"]["error"]

    # sent to this backend, but naming another one
    other_backend = new_volume(worker, "file1", host=f"{worker.host}@elsewhere")
    api.client.prepare(server=server).cast({}, "create_volume", volume=other_backend)
    assert (
        "does not name backend"
        in events.wait_event("volume.create.error", other_backend["id"])["payload"][
            "error"
        ]
    )

    two_sources = new_volume(
        worker, "file1", source_volid=str(uuid.uuid4()), snapshot_id=str(uuid.uuid4())
    )
    api.create_volume(two_sources)
    assert (
        "more than one source"
        in events.wait_event("volume.create.error", two_sources["id"])["payload"][
            "error"
        ]
    )

    ghost = new_volume(worker, "file1")
    api.delete_volume(ghost)
    assert (
        "could not be found"
        in events.wait_event("volume.delete.error", ghost["id"])["payload"]["error"]
    )

    volume = new_volume(worker, "file1")
    snapshot = new_snapshot(volume)
    api.create_volume(volume)
    api.create_snapshot(server, snapshot)
    api.delete_volume(volume)  # refused: it has a snapshot
    assert (
        "snapshot"
        in events.wait_event("volume.delete.error", volume["id"])["payload"]["error"]
    )
    assert api.get_volume(server, volume["id"])["status"] == "available"

    api.client.prepare(server=server).cast({}, "no_such_cast", x=1)
    api.extend_volume(volume, 3)
    events.wait_event("volume.extend.end", volume["id"])
    assert api.get_volume(server, volume["id"])["size"] == 3
    log = worker.log()
    assert "Refused no_such_cast" in log
    assert "volume.size -5 is outside" in log


def test_call_to_nobody_times_out_clearly(
    setup: tuple[Worker, VolumeAPI, Notifications],
) -> None:
    worker, api, _ = setup
    quick = VolumeAPI(api.transport, topic=worker.topic, timeout=1)
    with pytest.raises(oslo_messaging.MessagingTimeout):
        quick.get_volume(f"nobody@{uuid.uuid4().hex[:6]}", str(uuid.uuid4()))
