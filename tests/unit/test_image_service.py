"""The local image service: an image is never replaced, and an upload cut
short by a crash is taken up again only by the one who started it."""

from __future__ import annotations

import os
import pathlib
import uuid

import pytest

from volworker import exception
from volworker.context import RequestContext
from volworker.image import ORIGIN, LocalImageService

CTX = RequestContext()


def _data(tmp_path: pathlib.Path, content: bytes) -> str:
    path = tmp_path / f"upload-{uuid.uuid4().hex}"
    path.write_bytes(content)
    return str(path)


def _meta(image_id: str, origin: str | None) -> dict[str, object]:
    meta: dict[str, object] = {"id": image_id, "disk_format": "raw"}
    if origin is not None:
        meta["properties"] = {ORIGIN: origin}
    return meta


@pytest.fixture
def images(tmp_path: pathlib.Path) -> LocalImageService:
    return LocalImageService(str(tmp_path / "images"))


def _interrupted(images: LocalImageService, image_id: str, origin: str) -> None:
    """What a crash in the middle of ``origin``'s upload leaves: the
    reservation and part of the data, no metadata."""
    os.makedirs(images.images_dir, exist_ok=True)
    dest = os.path.join(images.images_dir, image_id)
    pathlib.Path(dest + ".upload").write_text(origin)
    pathlib.Path(dest).write_bytes(b"half")


def test_an_image_keeps_its_origin_and_is_never_replaced(
    tmp_path: pathlib.Path, images: LocalImageService
) -> None:
    image_id = str(uuid.uuid4())
    stored = images.upload(CTX, _meta(image_id, "op 1"), _data(tmp_path, b"first"))
    assert stored["properties"] == {ORIGIN: "op 1"}
    assert stored["size"] == len(b"first")
    for origin in ("op 1", "op 2", None):
        with pytest.raises(exception.ImageExists):
            images.upload(CTX, _meta(image_id, origin), _data(tmp_path, b"second"))
    assert pathlib.Path(images.images_dir, image_id).read_bytes() == b"first"
    assert sorted(os.listdir(images.images_dir)) == [image_id, f"{image_id}.json"]


def test_an_interrupted_upload_is_finished_by_its_origin(
    tmp_path: pathlib.Path, images: LocalImageService
) -> None:
    image_id = str(uuid.uuid4())
    _interrupted(images, image_id, "op 1")
    with pytest.raises(exception.ImageNotFound):
        images.show(CTX, image_id)
    stored = images.upload(CTX, _meta(image_id, "op 1"), _data(tmp_path, b"whole"))
    assert stored["size"] == len(b"whole")
    assert pathlib.Path(images.images_dir, image_id).read_bytes() == b"whole"
    assert sorted(os.listdir(images.images_dir)) == [image_id, f"{image_id}.json"]


@pytest.mark.parametrize("origin", ["op 2", "", None])
def test_nobody_else_takes_an_interrupted_upload(
    tmp_path: pathlib.Path, images: LocalImageService, origin: str | None
) -> None:
    image_id = str(uuid.uuid4())
    _interrupted(images, image_id, "op 1")
    data = _data(tmp_path, b"theirs")
    with pytest.raises(exception.ImageExists):
        images.upload(CTX, _meta(image_id, origin), data)
    dest = pathlib.Path(images.images_dir, image_id)
    assert dest.read_bytes() == b"half"
    assert pathlib.Path(f"{dest}.upload").read_text() == "op 1"
    assert pathlib.Path(data).read_bytes() == b"theirs"


def test_data_without_a_reservation_is_not_taken(
    tmp_path: pathlib.Path, images: LocalImageService
) -> None:
    """An upload from before reservations, cut short: nobody owns it."""
    image_id = str(uuid.uuid4())
    os.makedirs(images.images_dir)
    pathlib.Path(images.images_dir, image_id).write_bytes(b"old")
    with pytest.raises(exception.ImageExists):
        images.upload(CTX, _meta(image_id, "op 1"), _data(tmp_path, b"new"))
    assert sorted(os.listdir(images.images_dir)) == [image_id]


def test_a_failed_upload_frees_the_id(
    tmp_path: pathlib.Path, images: LocalImageService
) -> None:
    image_id = str(uuid.uuid4())
    with pytest.raises(FileNotFoundError):
        images.upload(CTX, _meta(image_id, "op 1"), str(tmp_path / "missing"))
    assert os.listdir(images.images_dir) == []
    images.upload(CTX, _meta(image_id, "op 2"), _data(tmp_path, b"ok"))
    assert images.show(CTX, image_id)["properties"] == {ORIGIN: "op 2"}
