"""Where images come from and go to.

Drivers copy images onto volumes and volumes into images through an
:class:`ImageService`. The default, :class:`LocalImageService`, keeps images in
a local directory: ``<images_dir>/<image id>`` holds the data and
``<image id>.json`` its metadata (``disk_format`` raw or qcow2, ``name``...).

An image, once stored, is never replaced: an upload to an id that exists is
refused. An upload first reserves its id with ``<image id>.upload``, which
names who uploads (the image's ``properties[ORIGIN]``, for the worker the
operation that copies a volume); an upload cut short by a crash is taken up
again only by that same origin, and the image keeps its origin so that the
operation, redone after a restart, knows the image it already made. A driver
reads a ``file://`` location in place only inside the
service's :meth:`~ImageService.local_dirs`, never through a symbolic link.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import shutil
import stat
import uuid
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from volworker import exception

if TYPE_CHECKING:
    from volworker.context import RequestContext

__all__ = ["DISK_FORMATS", "ORIGIN", "ImageService", "LocalImageService", "image_opts"]

DISK_FORMATS = ("raw", "qcow2")
#: the image property that names who made the image
ORIGIN = "volworker_origin"

image_opts = [
    cfg.StrOpt(
        "images_dir",
        default="$state_path/images",
        help="Directory of the local image service: <id> holds an image's "
        "data and <id>.json its metadata.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(image_opts, group="image")


class ImageService(abc.ABC):
    """The images a driver can read and write."""

    def local_dirs(self) -> tuple[str, ...]:
        """The directories (resolved) holding the images' data: the only
        places a ``file://`` location may point to. None by default."""
        return ()

    @abc.abstractmethod
    def show(self, context: RequestContext, image_id: str) -> dict[str, Any]:
        """The image's metadata; raise ImageNotFound when there is none."""

    @abc.abstractmethod
    def get_location(
        self, context: RequestContext, image_id: str
    ) -> tuple[str | None, list[dict[str, Any]]]:
        """``(direct_url, locations)`` as Glance gives them."""

    @abc.abstractmethod
    def download(self, context: RequestContext, image_id: str, dest_path: str) -> None:
        """Write the image's data, in its own disk format, to ``dest_path``."""

    @abc.abstractmethod
    def upload(
        self, context: RequestContext, image_meta: dict[str, Any], data_path: str
    ) -> dict[str, Any]:
        """Store ``data_path`` (in ``image_meta["disk_format"]``) as an image.

        The service may move the file. Returns the stored image's metadata.
        An image whose id exists is never replaced: raise ImageExists.
        """


def _check_image_id(image_id: str) -> str:
    try:
        return str(uuid.UUID(str(image_id)))
    except ValueError as exc:
        raise exception.InvalidInput(
            reason=f"image id {image_id!r} is not a UUID"
        ) from exc


def _open_data(path: str, image_id: str) -> int:
    """The image's data file, opened for reading without following a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise exception.ImageNotFound(image_id=image_id) from exc
    except OSError as exc:
        raise exception.InvalidInput(
            reason=f"image {image_id} is not a regular file: {exc.strerror}"
        ) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise exception.InvalidInput(reason=f"image {image_id} is not a regular file")
    return fd


def _write_new(path: str, text: str, image_id: str) -> None:
    """Write ``path`` whole or not at all, and only if it does not exist."""
    tmp = f"{path}.{uuid.uuid4().hex}.part"
    with open(tmp, "x", encoding="utf-8") as f:
        f.write(text)
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise exception.ImageExists(image_id=image_id) from None
    finally:
        os.unlink(tmp)


def _reserve(dest: str, image_id: str, origin: str) -> str:
    """Reserve ``image_id`` for an upload from ``origin``; the reservation's
    path. Two uploads of one id cannot both win. The same origin's own
    earlier upload, cut short, is taken up again; anyone else's, a stored
    image or the data of an upload that left no reservation is refused."""
    reservation = dest + ".upload"
    try:
        _write_new(reservation, origin, image_id)
    except exception.ImageExists:
        try:
            with open(reservation, encoding="utf-8") as f:
                held_by = f.read()
        except FileNotFoundError:  # that upload has just ended
            raise exception.ImageExists(image_id=image_id) from None
        if not origin or held_by != origin or os.path.exists(dest + ".json"):
            raise
        return reservation
    if os.path.lexists(dest):
        os.unlink(reservation)
        raise exception.ImageExists(image_id=image_id)
    return reservation


class LocalImageService(ImageService):
    """Images as files in one local directory."""

    def __init__(self, images_dir: str) -> None:
        self.images_dir = images_dir

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> LocalImageService:
        return cls(conf.image.images_dir)

    def local_dirs(self) -> tuple[str, ...]:
        return (os.path.realpath(self.images_dir),)

    def _data_path(self, image_id: str) -> str:
        return os.path.join(self.images_dir, _check_image_id(image_id))

    def show(self, context: RequestContext, image_id: str) -> dict[str, Any]:
        path = self._data_path(image_id)
        try:
            with open(path + ".json", encoding="utf-8") as f:
                meta = json.load(f)
        except FileNotFoundError as exc:
            raise exception.ImageNotFound(image_id=image_id) from exc
        except (OSError, ValueError) as exc:
            raise exception.VolumeBackendAPIException(
                data=f"image {image_id} has unreadable metadata: {exc}"
            ) from exc
        fd = _open_data(path, image_id)
        try:
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        meta.update(id=image_id, size=size)
        return dict(meta)

    def get_location(
        self, context: RequestContext, image_id: str
    ) -> tuple[str | None, list[dict[str, Any]]]:
        self.show(context, image_id)
        url = "file://" + self._data_path(image_id)
        return url, [{"url": url, "metadata": {}}]

    def download(self, context: RequestContext, image_id: str, dest_path: str) -> None:
        self.show(context, image_id)
        fd = _open_data(self._data_path(image_id), image_id)
        with os.fdopen(fd, "rb") as src, open(dest_path, "wb") as dest:
            shutil.copyfileobj(src, dest, 1024 * 1024)

    def upload(
        self, context: RequestContext, image_meta: dict[str, Any], data_path: str
    ) -> dict[str, Any]:
        image_id = _check_image_id(image_meta.get("id", ""))
        disk_format = image_meta.get("disk_format", "raw")
        if disk_format not in DISK_FORMATS:
            raise exception.InvalidInput(
                reason=f"disk_format {disk_format!r} is not one of {DISK_FORMATS}"
            )
        properties = dict(image_meta.get("properties") or {})
        os.makedirs(self.images_dir, mode=0o700, exist_ok=True)
        dest = self._data_path(image_id)
        meta = {
            "name": image_meta.get("name") or image_id,
            "disk_format": disk_format,
            "container_format": image_meta.get("container_format", "bare"),
            "status": "active",
            "properties": properties,
        }
        reservation = _reserve(dest, image_id, str(properties.get(ORIGIN, "")))
        try:
            shutil.move(data_path, dest)
            _write_new(dest + ".json", json.dumps(meta), image_id)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest)
            os.unlink(reservation)
            raise
        os.unlink(reservation)
        return self.show(context, image_id)
