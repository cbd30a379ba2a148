"""Images onto volumes and volumes into images, with qemu-img and its rbd:
protocol (Debian's qemu-block-extra).

The file driver's rules hold (:mod:`volworker_drivers.file.images`): only raw
and qcow2, the format always given to qemu-img and never probed, no image
with a backing or external data file, none larger than the volume. An image
is converted into a new image under the volume's temporary name, which then
replaces the volume, so a failed or interrupted copy leaves the volume as it
was. Image data that is not a local file, and an image being uploaded, pass
through a temp file in the backend's state directory.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

from volworker import exception
from volworker.context import RequestContext
from volworker.image import ImageService
from volworker_drivers.file.images import check_image, checked_format, image_data
from volworker_drivers.file.tools import (
    QEMU_IMG,
    Limits,
    fd_path,
    qemu_img_info,
    run,
)

from . import names
from .cluster import Settings
from .images import Images

__all__ = ["copy_image_to_volume", "copy_volume_to_image", "rbd_problem", "rbd_uri"]

LOG = logging.getLogger(__name__)


def _escaped(value: str) -> str:
    """A value inside qemu's rbd: filename, where ':', '/' and '@' separate."""
    return re.sub(r"([\\:/@])", r"\\\1", value)


def rbd_uri(settings: Settings, image: str) -> str:
    """qemu's name for an image of the pool: no key on the command line,
    only the user, whose key the configuration's keyring holds."""
    parts = [f"rbd:{_escaped(settings.pool)}/{_escaped(image)}"]
    if settings.user:
        parts.append(f"id={_escaped(settings.user)}")
    if settings.conffile:
        parts.append(f"conf={_escaped(settings.conffile)}")
    return ":".join(parts)


def rbd_problem() -> str | None:
    """What keeps qemu-img from reading and writing RBD images, or None."""
    try:
        done = subprocess.run(
            [QEMU_IMG, "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        return "qemu-img is not installed or not on PATH (install qemu-utils)"
    formats = next(
        (ln for ln in done.stdout.splitlines() if ln.startswith("Supported formats:")),
        "",
    )
    if "rbd" not in formats.split():
        return "qemu-img has no rbd: protocol (install qemu-block-extra)"
    return None


@contextlib.contextmanager
def _temp_file(tmp_dir: str, what: str) -> Iterator[str]:
    fd, path = tempfile.mkstemp(prefix=f".{what}-", dir=tmp_dir)
    os.close(fd)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # the image service may have moved it


def copy_image_to_volume(  # noqa: PLR0913 - what a copy needs to know
    context: RequestContext,
    images: Images,
    volume_id: str,
    image_service: ImageService,
    image_id: str,
    *,
    tmp_dir: str,
    timeout: float,
    limits: Limits,
    features: int | None = None,
    disable_sparse: bool = False,
) -> None:
    """Write the image's data onto the volume, which keeps its size."""
    settings = images.cluster.settings
    fmt = checked_format(
        image_service.show(context, image_id).get("disk_format"), f"image {image_id}"
    )
    size = images.size(names.volume(volume_id))
    if size is None:
        raise exception.VolumeNotFound(volume_id=volume_id)
    temp = functools.partial(_temp_file, tmp_dir, "image")
    with image_data(context, image_service, image_id, temp) as src:
        info = qemu_img_info(fd_path(src), fmt, limits, [src])
        check_image(info, image_id, size)
        with images.building(volume_id, replace=True) as tmp:
            images.create(tmp, size, features)
            # the new image reads as zeros, so zeros need not be written,
            # unless the caller asked for a fully allocated volume
            sparse = ["-S", "0"] if disable_sparse else ["--target-is-zero"]
            cmd = [QEMU_IMG, "convert", "-f", fmt, "-O", "raw", "-n", *sparse]
            cmd += [fd_path(src), rbd_uri(settings, tmp)]
            run(cmd, timeout=timeout, pass_fds=[src], limits=limits.memory_only())
    LOG.info("Copied %s image %s onto volume %s", fmt, image_id, volume_id)


def copy_volume_to_image(
    context: RequestContext,
    images: Images,
    volume_id: str,
    image_service: ImageService,
    image_meta: dict[str, Any],
    *,
    tmp_dir: str,
    timeout: float,
    limits: Limits,
) -> dict[str, Any]:
    """Store the volume's data as the image ``image_meta`` describes."""
    fmt = checked_format(
        image_meta.get("disk_format", "raw"), f"image {image_meta.get('id')}"
    )
    name = names.volume(volume_id)
    if images.size(name) is None:
        raise exception.VolumeNotFound(volume_id=volume_id)
    with _temp_file(tmp_dir, "upload") as path:
        cmd = [QEMU_IMG, "convert", "-f", "raw", "-O", fmt]
        cmd += [rbd_uri(images.cluster.settings, name), path]
        run(cmd, timeout=timeout, limits=limits.memory_only())
        stored = image_service.upload(context, image_meta, path)
    LOG.info("Copied volume %s into %s image %s", volume_id, fmt, image_meta.get("id"))
    return stored
