"""Images that try to make the driver read a file of the host, and the limits
qemu-img runs under: each is refused and the volume keeps its data."""

from __future__ import annotations

import json
import os
import pathlib
import uuid
from typing import Any

import pytest

from tests.unit.file.helpers import (
    MiB,
    created,
    pool_dir,
    qcow2_over_a_host_file,
    read,
    volume_path,
    write,
)
from volworker import exception
from volworker.context import RequestContext
from volworker.image import LocalImageService
from volworker_drivers.file.driver import FileDriver

CTX = RequestContext()
SECRET = b"host secret, never in a volume " * 64
DATA = os.urandom(MiB)


class PointingImages(LocalImageService):
    """An image service whose locations say what a test wants."""

    def __init__(self, images_dir: str, url: str) -> None:
        super().__init__(images_dir)
        self.url = url

    def get_location(
        self, context: RequestContext, image_id: str
    ) -> tuple[str | None, list[dict[str, Any]]]:
        self.show(context, image_id)
        return self.url, [{"url": self.url, "metadata": {}}]


@pytest.fixture
def secret(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "host-secret.raw"
    path.write_bytes(SECRET)
    return path


def _store(images: LocalImageService, tmp_path: pathlib.Path, fmt: str) -> str:
    """A small image of ``fmt`` in the store (data at 0)."""
    raw = tmp_path / f"{uuid.uuid4()}.raw"
    raw.write_bytes(DATA)
    image_id = str(uuid.uuid4())
    images.upload(CTX, {"id": image_id, "disk_format": fmt}, str(raw))
    return image_id


def _refused(driver: FileDriver, images: LocalImageService, image_id: str) -> str:
    vol = created(driver)
    write(volume_path(driver, vol), 0, DATA)
    with pytest.raises(exception.InvalidInput) as err:
        driver.copy_image_to_volume(CTX, vol, images, image_id)
    assert read(volume_path(driver, vol), 0, MiB) == DATA
    assert os.listdir(pool_dir(driver) / ".tmp") == []
    return str(err.value)


def test_qcow2_with_an_external_data_file_is_refused(
    driver: FileDriver, tmp_path: pathlib.Path, secret: pathlib.Path
) -> None:
    """OSSA-2024-001: a qcow2 whose data lives in a host file of the
    attacker's choosing would copy that file into the volume."""
    images = LocalImageService(str(tmp_path / "images"))
    qcow2 = qcow2_over_a_host_file(tmp_path, secret)
    image_id = str(uuid.uuid4())
    images.upload(CTX, {"id": image_id, "disk_format": "qcow2"}, str(qcow2))
    assert "external file" in _refused(driver, images, image_id)


def test_a_location_outside_the_store_is_refused(
    driver: FileDriver, tmp_path: pathlib.Path, secret: pathlib.Path
) -> None:
    images = PointingImages(str(tmp_path / "images"), f"file://{secret}")
    image_id = _store(images, tmp_path, "raw")
    assert "outside the image store" in _refused(driver, images, image_id)


def test_a_location_through_the_store_dir_is_refused(
    driver: FileDriver, tmp_path: pathlib.Path, secret: pathlib.Path
) -> None:
    store = tmp_path / "images"
    url = f"file://{store}/../{secret.name}"
    images = PointingImages(str(store), url)
    image_id = _store(images, tmp_path, "raw")
    assert "outside the image store" in _refused(driver, images, image_id)


def test_a_link_in_the_store_is_not_followed(
    driver: FileDriver, tmp_path: pathlib.Path, secret: pathlib.Path
) -> None:
    images = LocalImageService(str(tmp_path / "images"))
    image_id = _store(images, tmp_path, "raw")
    data = pathlib.Path(images.images_dir) / image_id
    data.unlink()
    data.symlink_to(secret)
    assert "regular file" in _refused(driver, images, image_id)


def test_an_image_is_never_replaced(driver: FileDriver, tmp_path: pathlib.Path) -> None:
    images = LocalImageService(str(tmp_path / "images"))
    image_id = _store(images, tmp_path, "raw")
    before = (pathlib.Path(images.images_dir) / image_id).read_bytes()
    vol = created(driver)
    with pytest.raises(exception.ImageExists):
        driver.copy_volume_to_image(
            CTX, vol, images, {"id": image_id, "disk_format": "qcow2"}
        )
    stored = pathlib.Path(images.images_dir) / image_id
    assert stored.read_bytes() == before
    meta = json.loads(stored.with_name(f"{image_id}.json").read_text())
    assert meta["disk_format"] == "raw"
    assert os.listdir(pool_dir(driver) / ".tmp") == []


def test_qemu_img_runs_under_prlimit(
    build: Any, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prlimit on PATH is a wrapper that notes its arguments and how many
    malloc arenas the tool may have (the ceiling counts their reservations),
    then runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "prlimit.log"
    wrapper = bin_dir / "prlimit"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'echo "arenas=$MALLOC_ARENA_MAX $*" >> {log}\n'
        'exec /usr/bin/prlimit "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    driver = build(qemu_img_memory_limit_mb=512, qemu_img_info_cpu_limit=7)
    images = LocalImageService(str(tmp_path / "images"))
    image_id = _store(images, tmp_path, "raw")
    driver.copy_image_to_volume(CTX, created(driver), images, image_id)
    lines = log.read_text().splitlines()
    info = [line for line in lines if " qemu-img info " in line]
    convert = [line for line in lines if " qemu-img convert " in line]
    assert info and convert, lines
    assert info[0].startswith(f"arenas=2 --as={512 * MiB} --cpu=7 -- ")
    assert convert[0].startswith(f"arenas=2 --as={512 * MiB} -- ")
