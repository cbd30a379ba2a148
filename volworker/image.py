"""Where images come from and go to.

Drivers copy images onto volumes and volumes into images through an
:class:`ImageService`. The default, :class:`LocalImageService`, keeps images in
a local directory: ``<images_dir>/<image id>`` holds the data and
``<image id>.json`` its metadata (``disk_format`` raw or qcow2, ``name``...).
"""

from __future__ import annotations

import abc
import json
import os
import shutil
import uuid
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from volworker import exception

if TYPE_CHECKING:
    from volworker.context import RequestContext

__all__ = ["DISK_FORMATS", "ImageService", "LocalImageService", "image_opts"]

DISK_FORMATS = ("raw", "qcow2")

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
        """


def _check_image_id(image_id: str) -> str:
    try:
        return str(uuid.UUID(str(image_id)))
    except ValueError as exc:
        raise exception.InvalidInput(
            reason=f"image id {image_id!r} is not a UUID"
        ) from exc


class LocalImageService(ImageService):
    """Images as files in one local directory."""

    def __init__(self, images_dir: str) -> None:
        self.images_dir = images_dir

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> LocalImageService:
        return cls(conf.image.images_dir)

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
        if not os.path.isfile(path):
            raise exception.ImageNotFound(image_id=image_id)
        meta.update(id=image_id, size=os.path.getsize(path))
        return dict(meta)

    def get_location(
        self, context: RequestContext, image_id: str
    ) -> tuple[str | None, list[dict[str, Any]]]:
        self.show(context, image_id)
        url = "file://" + self._data_path(image_id)
        return url, [{"url": url, "metadata": {}}]

    def download(self, context: RequestContext, image_id: str, dest_path: str) -> None:
        self.show(context, image_id)
        shutil.copyfile(self._data_path(image_id), dest_path)

    def upload(
        self, context: RequestContext, image_meta: dict[str, Any], data_path: str
    ) -> dict[str, Any]:
        image_id = _check_image_id(image_meta.get("id", ""))
        disk_format = image_meta.get("disk_format", "raw")
        if disk_format not in DISK_FORMATS:
            raise exception.InvalidInput(
                reason=f"disk_format {disk_format!r} is not one of {DISK_FORMATS}"
            )
        os.makedirs(self.images_dir, exist_ok=True)
        dest = self._data_path(image_id)
        meta = {
            "name": image_meta.get("name") or image_id,
            "disk_format": disk_format,
            "container_format": image_meta.get("container_format", "bare"),
            "status": "active",
        }
        tmp = f"{dest}.json.part"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(meta, f)
        shutil.move(data_path, dest)
        os.replace(tmp, dest + ".json")
        return self.show(context, image_id)
