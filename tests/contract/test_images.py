"""Images to volumes and back, through the local image service."""

from __future__ import annotations

import os
import pathlib
import subprocess
import uuid

import pytest

from tests.contract import blockclient
from tests.contract.conftest import Backend, apply
from volworker import exception
from volworker.context import RequestContext
from volworker.driver import Feature
from volworker.image import LocalImageService

MiB = 1024**2


@pytest.fixture
def images(tmp_path: pathlib.Path) -> LocalImageService:
    return LocalImageService(str(tmp_path / "images"))


def _make_image(
    images: LocalImageService, tmp_path: pathlib.Path, disk_format: str, size: int
) -> str:
    """An image of ``size`` bytes holding 0x5A in its fourth MiB."""
    raw = tmp_path / f"src-{uuid.uuid4()}.raw"
    with open(raw, "wb") as f:
        f.truncate(size)
        f.seek(3 * MiB)
        f.write(b"\x5a" * MiB)
    data = raw
    if disk_format != "raw":
        data = raw.with_suffix("." + disk_format)
        subprocess.run(
            ["qemu-img", "convert", "-f", "raw", "-O", disk_format, raw, data],
            check=True,
        )
    image_id = str(uuid.uuid4())
    images.upload(
        RequestContext(), {"id": image_id, "disk_format": disk_format}, str(data)
    )
    return image_id


def _image_holds(images: LocalImageService, image_id: str, disk_format: str) -> bool:
    path = os.path.join(images.images_dir, image_id)
    done = subprocess.run(
        ["qemu-io", "-f", disk_format, "-c", f"read -P 0x5a {3 * MiB} {MiB}", path],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0 and "Pattern verification failed" not in done.stdout


@pytest.mark.parametrize("disk_format", ["raw", "qcow2"])
def test_copy_image_to_volume(
    backend: Backend,
    images: LocalImageService,
    tmp_path: pathlib.Path,
    disk_format: str,
) -> None:
    image_id = _make_image(images, tmp_path, disk_format, 16 * MiB)
    volume = backend.create(size=1)
    update = backend.driver.copy_image_to_volume(
        RequestContext(), volume, images, image_id
    )
    volume = apply(volume, update)
    if backend.driver.supports(Feature.DATA_PATH):
        info = backend.attach(volume)
        assert blockclient.holds(info, 3 * MiB, MiB, 0x5A)
        assert blockclient.holds(info, 0, 3 * MiB, 0)
        assert blockclient.size(info) == volume.size * 1024**3


@pytest.mark.parametrize("disk_format", ["raw", "qcow2"])
def test_copy_volume_to_image(
    data_backend: Backend, images: LocalImageService, disk_format: str
) -> None:
    backend = data_backend
    volume = backend.create(size=1)
    blockclient.write(backend.attach(volume), 3 * MiB, MiB, 0x5A)
    backend.detach(volume)
    image_id = str(uuid.uuid4())
    meta = {"id": image_id, "disk_format": disk_format, "name": "contract"}
    backend.driver.copy_volume_to_image(RequestContext(), volume, images, meta)
    assert images.show(RequestContext(), image_id)["disk_format"] == disk_format
    assert _image_holds(images, image_id, disk_format)


def test_image_larger_than_volume_is_refused(
    backend: Backend, images: LocalImageService, tmp_path: pathlib.Path
) -> None:
    image_id = _make_image(images, tmp_path, "raw", 2 * 1024**3)
    volume = backend.create(size=1)
    with pytest.raises(exception.InvalidInput):
        backend.driver.copy_image_to_volume(RequestContext(), volume, images, image_id)


def test_missing_image(backend: Backend, images: LocalImageService) -> None:
    volume = backend.create(size=1)
    with pytest.raises(exception.ImageNotFound):
        backend.driver.copy_image_to_volume(
            RequestContext(), volume, images, str(uuid.uuid4())
        )
