"""Images to volumes and back with qemu-img: raw and qcow2, checks on the
image, and failures that leave the volume as it was."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import uuid
from typing import Any

import pytest

from tests.unit.file.helpers import (
    GiB,
    MiB,
    created,
    pool_dir,
    read,
    volume_path,
    write,
)
from volworker import exception
from volworker.context import RequestContext
from volworker.image import LocalImageService
from volworker_drivers.file.driver import FileDriver

CTX = RequestContext()
DATA = os.urandom(MiB)


class DownloadOnlyImages(LocalImageService):
    """An image service that gives no file:// location, like a remote one."""

    def get_location(
        self, context: RequestContext, image_id: str
    ) -> tuple[str | None, list[dict[str, Any]]]:
        self.show(context, image_id)
        return None, []


@pytest.fixture
def images(tmp_path: pathlib.Path) -> LocalImageService:
    return LocalImageService(str(tmp_path / "images"))


def _image_info(images: LocalImageService, image_id: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            "qemu-img",
            "info",
            "--output=json",
            os.path.join(images.images_dir, image_id),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


def _upload(
    images: LocalImageService, tmp_path: pathlib.Path, disk_format: str, *extra: str
) -> str:
    """A 16 MiB image with DATA at 3 MiB (qemu-img create options in extra)."""
    raw = tmp_path / f"{uuid.uuid4()}.raw"
    with open(raw, "wb") as f:
        f.truncate(16 * MiB)
    write(raw, 3 * MiB, DATA)
    data = raw
    if disk_format == "qcow2":
        data = raw.with_suffix(".qcow2")
        subprocess.run(
            ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", *extra, raw, data],
            check=True,
        )
    image_id = str(uuid.uuid4())
    images.upload(CTX, {"id": image_id, "disk_format": disk_format}, str(data))
    return image_id


@pytest.mark.parametrize("disk_format", ["raw", "qcow2"])
def test_round_trip(
    driver: FileDriver, images: LocalImageService, disk_format: str
) -> None:
    source = created(driver, 1)
    write(volume_path(driver, source), 3 * MiB, DATA)
    write(volume_path(driver, source), 700 * MiB, DATA)
    image_id = str(uuid.uuid4())
    meta = {"id": image_id, "disk_format": disk_format, "name": "round"}
    driver.copy_volume_to_image(CTX, source, images, meta)
    info = _image_info(images, image_id)
    assert info["format"] == disk_format and info["virtual-size"] == GiB

    target = created(driver, 2, pool="beta")
    driver.copy_image_to_volume(CTX, target, images, image_id)
    path = volume_path(driver, target)
    assert os.path.getsize(path) == 2 * GiB
    assert read(path, 3 * MiB, MiB) == DATA and read(path, 700 * MiB, MiB) == DATA
    assert read(path, 0, MiB) == bytes(MiB)
    assert os.stat(path).st_blocks * 512 < 64 * MiB  # holes stayed holes
    assert os.listdir(pool_dir(driver) / ".tmp") == []
    assert os.listdir(pool_dir(driver, "beta") / ".tmp") == []


def test_downloaded_image(driver: FileDriver, tmp_path: pathlib.Path) -> None:
    images = DownloadOnlyImages(str(tmp_path / "images"))
    image_id = _upload(images, tmp_path, "qcow2")
    vol = created(driver)
    driver.copy_image_to_volume(CTX, vol, images, image_id)
    assert read(volume_path(driver, vol), 3 * MiB, MiB) == DATA
    assert os.listdir(pool_dir(driver) / ".tmp") == []


def test_disable_sparse_allocates_the_volume(
    driver: FileDriver, images: LocalImageService, tmp_path: pathlib.Path
) -> None:
    image_id = _upload(images, tmp_path, "raw")
    sparse, dense = created(driver), created(driver)
    driver.copy_image_to_volume(CTX, sparse, images, image_id)
    driver.copy_image_to_volume(CTX, dense, images, image_id, disable_sparse=True)
    # the image's 16 MiB are written in full, zeros too
    assert os.stat(volume_path(driver, dense)).st_blocks * 512 >= 16 * MiB
    assert os.stat(volume_path(driver, sparse)).st_blocks * 512 <= 4 * MiB


def _refused(
    driver: FileDriver, images: LocalImageService, image_id: str, error: type
) -> str:
    """Copying the image fails with ``error``; the volume keeps its data."""
    vol = created(driver)
    write(volume_path(driver, vol), 0, DATA)
    with pytest.raises(error) as err:
        driver.copy_image_to_volume(CTX, vol, images, image_id)
    assert read(volume_path(driver, vol), 0, MiB) == DATA
    assert os.listdir(pool_dir(driver) / ".tmp") == []
    return str(err.value)


def test_image_larger_than_the_volume(
    driver: FileDriver, images: LocalImageService, tmp_path: pathlib.Path
) -> None:
    big = tmp_path / "big.raw"
    with open(big, "wb") as f:
        f.truncate(GiB + 1)
    image_id = str(uuid.uuid4())
    images.upload(CTX, {"id": image_id, "disk_format": "raw"}, str(big))
    message = _refused(driver, images, image_id, exception.InvalidInput)
    assert "virtual size of" in message and f"holds only {GiB}" in message


def test_qcow2_with_a_backing_file_is_refused(
    driver: FileDriver, images: LocalImageService, tmp_path: pathlib.Path
) -> None:
    secret = tmp_path / "host-secret.raw"
    secret.write_bytes(b"host data" * 100)
    image_id = _upload(images, tmp_path, "qcow2", "-B", str(secret), "-F", "raw")
    message = _refused(driver, images, image_id, exception.InvalidInput)
    assert "backing file" in message


def test_format_is_never_probed(
    driver: FileDriver, images: LocalImageService, tmp_path: pathlib.Path
) -> None:
    image_id = _upload(images, tmp_path, "raw")
    meta_path = pathlib.Path(images.images_dir) / f"{image_id}.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "disk_format": "qcow2"}))
    message = _refused(driver, images, image_id, exception.VolumeBackendAPIException)
    assert "qemu-img info" in message and "qcow2" in message


def test_unsupported_formats(
    driver: FileDriver, images: LocalImageService, tmp_path: pathlib.Path
) -> None:
    vol = created(driver)
    with pytest.raises(exception.InvalidInput, match="vmdk"):
        driver.copy_volume_to_image(
            CTX, vol, images, {"id": str(uuid.uuid4()), "disk_format": "vmdk"}
        )
    image_id = _upload(images, tmp_path, "raw")
    meta_path = pathlib.Path(images.images_dir) / f"{image_id}.json"
    meta_path.write_text(json.dumps({"disk_format": "vhd"}))
    with pytest.raises(exception.InvalidInput, match="vhd"):
        driver.copy_image_to_volume(CTX, vol, images, image_id)


def test_no_image_onto_an_exported_volume(
    driver: FileDriver, images: LocalImageService, tmp_path: pathlib.Path
) -> None:
    vol = created(driver)
    driver.initialize_connection(vol, {"host": "c"})
    with pytest.raises(exception.VolumeIsBusy):
        driver.copy_image_to_volume(CTX, vol, images, _upload(images, tmp_path, "raw"))
