"""Images against a running worker: an existing image is never replaced; an
image that points outside the image store (a link, a qcow2 backing file or
external data file) is refused and no host file reaches a volume; qemu-img
runs under prlimit; good raw and qcow2 images make volumes."""

from __future__ import annotations

import json
import pathlib
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.security.conftest import BACKEND, new_volume, settled
from tests.unit.file.helpers import qcow2_over_a_host_file
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker

MiB = 1024 * 1024
SECRET = b"the host's secret " * 1024
MARK = b"\x5a" * MiB


class Rig:
    """A file worker with debug logs, its client, notifications, pool and
    image store."""

    def __init__(
        self, worker: Worker, api: VolumeAPI, events: Notifications, pool: pathlib.Path
    ) -> None:
        self.worker, self.api, self.events, self.pool = worker, api, events, pool
        self.server = worker.server(BACKEND)
        self.images = worker.dir / "state" / "images"

    def plant(self, data: pathlib.Path, disk_format: str) -> str:
        """Put an image into the store, as an uploader would."""
        image_id = str(uuid.uuid4())
        self.images.mkdir(parents=True, exist_ok=True)
        data.rename(self.images / image_id)
        meta = {"name": image_id, "disk_format": disk_format}
        (self.images / f"{image_id}.json").write_text(json.dumps(meta))
        return image_id

    def create_from(self, image_id: str) -> dict[str, Any]:
        volume = new_volume(self.worker, image_id=image_id)
        self.api.create_volume(volume)
        return settled(self.api, self.server, volume["id"])

    def contents(self, volume_id: str) -> bytes:
        return (self.pool / f"volume-{volume_id}").read_bytes()


@pytest.fixture
def rig(
    tmp_path: pathlib.Path,
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[[Worker], Notifications],
) -> Iterator[Rig]:
    pool = tmp_path / "pool"
    backend = {"volume_driver": "file", "file_pools": f"p:{pool}"}
    worker = make_worker({BACKEND: backend}, defaults={"debug": True})
    worker.start().wait_ready()
    yield Rig(worker, client(worker), notifications(worker), pool)
    assert worker.stop() == 0


@pytest.fixture
def secret(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "host-secret"
    path.write_bytes(SECRET)
    return path


def _raw(tmp_path: pathlib.Path) -> pathlib.Path:
    """A 4 MiB raw image with MARK in its second MiB."""
    path = tmp_path / f"{uuid.uuid4()}.raw"
    with open(path, "wb") as f:
        f.truncate(4 * MiB)
        f.seek(MiB)
        f.write(MARK)
    return path


def _qcow2(tmp_path: pathlib.Path, *options: str) -> pathlib.Path:
    path = tmp_path / f"{uuid.uuid4()}.qcow2"
    source = _raw(tmp_path)
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", *options, source, path],
        check=True,
        capture_output=True,
    )
    return path


def test_good_images_make_volumes_under_prlimit(
    rig: Rig, tmp_path: pathlib.Path
) -> None:
    for disk_format, data in (("raw", _raw(tmp_path)), ("qcow2", _qcow2(tmp_path))):
        record = rig.create_from(rig.plant(data, disk_format))
        assert record["status"] == "available", record
        assert rig.contents(record["id"])[MiB : 2 * MiB] == MARK
    log = rig.worker.log()
    assert "prlimit --as=1073741824 --cpu=30 -- qemu-img info" in log
    assert "prlimit --as=1073741824 -- qemu-img convert" in log


def test_a_link_out_of_the_store_is_refused(
    rig: Rig, tmp_path: pathlib.Path, secret: pathlib.Path
) -> None:
    image_id = rig.plant(_raw(tmp_path), "raw")
    (rig.images / image_id).unlink()
    (rig.images / image_id).symlink_to(secret)
    record = rig.create_from(image_id)
    assert record["status"] == "error"
    assert "regular file" in record["error"]
    assert not (rig.pool / f"volume-{record['id']}").exists() or (
        SECRET[:64] not in rig.contents(record["id"])
    )


def test_a_qcow2_with_an_external_data_file_is_refused(
    rig: Rig, tmp_path: pathlib.Path, secret: pathlib.Path
) -> None:
    """OSSA-2024-001: the data of such an image is a file of the host."""
    qcow2 = qcow2_over_a_host_file(tmp_path, secret)
    record = rig.create_from(rig.plant(qcow2, "qcow2"))
    assert record["status"] == "error"
    assert "external file" in record["error"]


def test_a_qcow2_with_a_backing_file_is_refused(
    rig: Rig, tmp_path: pathlib.Path, secret: pathlib.Path
) -> None:
    image = _qcow2(tmp_path, "-B", str(secret), "-F", "raw")
    record = rig.create_from(rig.plant(image, "qcow2"))
    assert record["status"] == "error"
    assert "backing file" in record["error"]


def test_an_image_is_never_replaced(rig: Rig, tmp_path: pathlib.Path) -> None:
    existing = rig.plant(_raw(tmp_path), "raw")
    before = (rig.images / existing).read_bytes()
    volume = new_volume(rig.worker)
    rig.api.create_volume(volume)
    assert settled(rig.api, rig.server, volume["id"])["status"] == "available"

    rig.api.copy_volume_to_image(volume, {"id": existing, "disk_format": "qcow2"})
    error = rig.events.wait_event("volume.copy_to_image.error", volume["id"])
    assert "already exists" in error["payload"]["error"]
    assert (rig.images / existing).read_bytes() == before
    assert rig.api.get_volume(rig.server, volume["id"])["status"] == "available"

    fresh = str(uuid.uuid4())
    rig.api.copy_volume_to_image(volume, {"id": fresh, "disk_format": "qcow2"})
    rig.events.wait_event("volume.copy_to_image.end", volume["id"])
    meta = json.loads((rig.images / f"{fresh}.json").read_text())
    assert meta["disk_format"] == "qcow2"
