"""Images onto volumes and volumes into images, with qemu-img.

Only raw and qcow2 are accepted, and the format is always given to qemu-img
(never probed). A qcow2 image that points at a backing or data file is
refused: it could make qemu-img read a file of the host. An image is written
into a temp file of the volume's size, which then replaces the volume, so a
failed or interrupted copy leaves the volume as it was.
"""

from __future__ import annotations

import logging
import os
import stat
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from volworker import exception
from volworker.context import RequestContext
from volworker.image import DISK_FORMATS, ImageService

from . import names
from .fsdir import Dir
from .store import open_volume
from .tempfiles import TempFile
from .tools import QEMU_IMG, fd_path, qemu_img_info, run

__all__ = [
    "check_image",
    "checked_format",
    "copy_image_to_volume",
    "copy_volume_to_image",
    "local_file",
    "opened_image",
]

LOG = logging.getLogger(__name__)


def checked_format(value: Any, what: str) -> str:
    if value not in DISK_FORMATS:
        raise exception.InvalidInput(
            reason=f"{what} has disk_format {value!r}; only "
            f"{' or '.join(DISK_FORMATS)} are taken"
        )
    return str(value)


def local_file(
    context: RequestContext, image_service: ImageService, image_id: str
) -> str | None:
    """The image's data as a local path, when the service offers file://."""
    direct_url, locations = image_service.get_location(context, image_id)
    urls = [direct_url] + [loc.get("url") for loc in locations or []]
    for url in urls:
        parsed = urllib.parse.urlparse(url or "")
        if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
            path = urllib.parse.unquote(parsed.path)
            if os.path.isabs(path):
                return path
    return None


@contextmanager
def _image_fd(
    context: RequestContext, root: Dir, image_service: ImageService, image_id: str
) -> Iterator[int]:
    """The image's data, open for reading: in place when it is a local file,
    else downloaded into a temp file of the pool."""
    path = local_file(context, image_service, image_id)
    with ExitStack() as stack:
        if path is None:
            tmp = stack.enter_context(TempFile(root, "image"))
            image_service.download(context, image_id, tmp.path)
            path = tmp.path
        yield stack.enter_context(opened_image(path, image_id))


@contextmanager
def opened_image(path: str, image_id: str) -> Iterator[int]:
    """The image's data at ``path``, open for reading; it must be a regular
    file."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise exception.InvalidInput(
                reason=f"image {image_id} at {path} is not a regular file"
            )
        yield fd
    finally:
        os.close(fd)


def check_image(info: dict[str, Any], image_id: str, volume_bytes: int) -> None:
    data = (info.get("format-specific") or {}).get("data") or {}
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise exception.InvalidInput(
            reason=f"image {image_id} has a backing file; only self-contained "
            "images are accepted"
        )
    if data.get("data-file"):
        raise exception.InvalidInput(
            reason=f"image {image_id} keeps its data in an external file"
        )
    virtual = int(info.get("virtual-size") or 0)
    if virtual > volume_bytes:
        raise exception.InvalidInput(
            reason=f"image {image_id} has a virtual size of {virtual} bytes; "
            f"the volume holds only {volume_bytes}"
        )


def copy_image_to_volume(
    context: RequestContext,
    root: Dir,
    volume_id: str,
    image_service: ImageService,
    image_id: str,
    *,
    timeout: float,
    disable_sparse: bool = False,
) -> None:
    """Write the image's data onto the volume, which keeps its size."""
    started = time.monotonic()
    disk_format = checked_format(
        image_service.show(context, image_id).get("disk_format"), f"image {image_id}"
    )
    name = names.volume_file(volume_id)
    with open_volume(root, volume_id) as volume_fd:
        volume_bytes = os.fstat(volume_fd).st_size
    with _image_fd(context, root, image_service, image_id) as src:
        check_image(
            qemu_img_info(fd_path(src), disk_format, [src]), image_id, volume_bytes
        )
        with TempFile(root, name) as tmp:
            os.ftruncate(tmp.fd, volume_bytes)
            # NOTE: the target is a new sparse file, so zeros need not be
            # written, unless the caller asked for a fully allocated volume.
            sparse = ["-S", "0"] if disable_sparse else ["--target-is-zero"]
            cmd = [QEMU_IMG, "convert", "-f", disk_format, "-O", "raw", "-n"]
            cmd += [*sparse, fd_path(src), fd_path(tmp.fd)]
            run(cmd, timeout=timeout, pass_fds=[src, tmp.fd])
            root.regular(name)
            tmp.replace(root, name)
    LOG.info(
        "Copied %s image %s onto volume %s in %.3fs",
        disk_format,
        image_id,
        volume_id,
        time.monotonic() - started,
    )


def copy_volume_to_image(
    context: RequestContext,
    root: Dir,
    volume_id: str,
    image_service: ImageService,
    image_meta: dict[str, Any],
    *,
    timeout: float,
) -> dict[str, Any]:
    """Store the volume's data as the image ``image_meta`` describes."""
    started = time.monotonic()
    disk_format = checked_format(
        image_meta.get("disk_format", "raw"), f"image {image_meta.get('id')}"
    )
    with open_volume(root, volume_id) as volume_fd, TempFile(root, "image") as tmp:
        # NOTE: -U reads the volume even while its export holds qemu's lock.
        cmd = [QEMU_IMG, "convert", "-U", "-f", "raw", "-O", disk_format]
        cmd += [fd_path(volume_fd), fd_path(tmp.fd)]
        run(cmd, timeout=timeout, pass_fds=[volume_fd, tmp.fd])
        stored = image_service.upload(context, image_meta, tmp.path)
    LOG.info(
        "Copied volume %s into %s image %s in %.3fs",
        volume_id,
        disk_format,
        image_meta.get("id"),
        time.monotonic() - started,
    )
    return stored
