"""Images onto volumes and volumes into images, with qemu-img.

Only raw and qcow2 are accepted, and the format is always given to qemu-img
(never probed). A qcow2 image that points at a backing or data file is
refused: it could make qemu-img read a file of the host (OSSA-2024-001). An
image offered as a ``file://`` location is read in place only inside the
image service's own directories, never through a symbolic link; a location
anywhere else is refused. qemu-img runs under resource limits
(:class:`~.tools.Limits`). An image is written into a temp file of the
volume's size, which then replaces the volume, so a failed or interrupted
copy leaves the volume as it was.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

from volworker import exception
from volworker.context import RequestContext
from volworker.image import DISK_FORMATS, ImageService

from . import names
from .fsdir import Dir
from .store import open_volume
from .tempfiles import TempFile
from .tools import QEMU_IMG, Limits, fd_path, qemu_img_info, run

__all__ = [
    "check_image",
    "checked_format",
    "copy_image_to_volume",
    "copy_volume_to_image",
    "image_data",
]

LOG = logging.getLogger(__name__)


def checked_format(value: Any, what: str) -> str:
    """The image's disk format, when it is one qemu-img is let read."""
    if value not in DISK_FORMATS:
        raise exception.InvalidInput(
            reason=f"{what} has disk_format {value!r}; the driver takes "
            f"{' or '.join(DISK_FORMATS)}"
        )
    return str(value)


def _outside(image_id: str, url: str) -> exception.InvalidInput:
    return exception.InvalidInput(
        reason=f"image {image_id} has a file:// location outside the image "
        f"store's directories ({url}); it is not read"
    )


def _local_file(
    context: RequestContext, image_service: ImageService, image_id: str
) -> tuple[str, str] | None:
    """``(directory, file name)`` of the image's data when the service offers
    it as a local file inside its own directories; None when it offers no
    file:// location (the data is downloaded)."""
    direct_url, locations = image_service.get_location(context, image_id)
    urls = [direct_url] + [loc.get("url") for loc in locations or []]
    allowed = image_service.local_dirs()
    outside = None
    for url in urls:
        parsed = urllib.parse.urlparse(url or "")
        if parsed.scheme != "file":
            continue
        path = urllib.parse.unquote(parsed.path)
        name = os.path.basename(path)
        local = parsed.netloc in ("", "localhost") and os.path.isabs(path)
        directory = os.path.realpath(os.path.dirname(path)) if local else None
        if directory in allowed and name not in ("", ".", ".."):
            return str(directory), name
        outside = outside or str(url)
    if outside:
        raise _outside(image_id, outside)
    return None


def _open_in(directory: str, name: str, image_id: str) -> int:
    """``name`` in ``directory``, opened for reading; a link is refused."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        raise exception.InvalidInput(
            reason=f"image {image_id} cannot be read in place "
            f"(a symbolic link or no file): {exc.strerror}"
        ) from exc
    finally:
        os.close(dir_fd)


@contextmanager
def image_data(
    context: RequestContext,
    image_service: ImageService,
    image_id: str,
    temp_path: Callable[[], AbstractContextManager[str]],
) -> Iterator[int]:
    """The image's data, open for reading: in place when it is a local file
    of the image store, else downloaded into the file ``temp_path`` gives
    (the file driver's is in the pool; another driver's its own)."""
    local = _local_file(context, image_service, image_id)
    with ExitStack() as stack:
        if local is None:
            path = stack.enter_context(temp_path())
            image_service.download(context, image_id, path)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        else:
            fd = _open_in(*local, image_id)
        stack.callback(os.close, fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise exception.InvalidInput(
                reason=f"image {image_id} is not a regular file"
            )
        yield fd


@contextmanager
def _in_pool(root: Dir) -> Iterator[str]:
    with TempFile(root, "image") as tmp:
        yield tmp.path


def check_image(info: dict[str, Any], image_id: str, volume_bytes: int) -> None:
    """Refuse an image that is not self-contained or outgrows the volume."""
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
    limits: Limits,
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
    temp = functools.partial(_in_pool, root)
    with image_data(context, image_service, image_id, temp) as src:
        check_image(
            qemu_img_info(fd_path(src), disk_format, limits, [src]),
            image_id,
            volume_bytes,
        )
        with TempFile(root, name) as tmp:
            os.ftruncate(tmp.fd, volume_bytes)
            # The target is a new sparse file, so zeros need not be
            # written, unless the caller asked for a fully allocated volume.
            sparse = ["-S", "0"] if disable_sparse else ["--target-is-zero"]
            cmd = [QEMU_IMG, "convert", "-f", disk_format, "-O", "raw", "-n"]
            cmd += [*sparse, fd_path(src), fd_path(tmp.fd)]
            run(
                cmd,
                timeout=timeout,
                pass_fds=[src, tmp.fd],
                limits=limits.memory_only(),
            )
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
    limits: Limits,
) -> dict[str, Any]:
    """Store the volume's data as the image ``image_meta`` describes."""
    started = time.monotonic()
    disk_format = checked_format(
        image_meta.get("disk_format", "raw"), f"image {image_meta.get('id')}"
    )
    with open_volume(root, volume_id) as volume_fd, TempFile(root, "image") as tmp:
        # -U reads the volume even while its export holds qemu's lock.
        cmd = [QEMU_IMG, "convert", "-U", "-f", "raw", "-O", disk_format]
        cmd += [fd_path(volume_fd), fd_path(tmp.fd)]
        run(
            cmd,
            timeout=timeout,
            pass_fds=[volume_fd, tmp.fd],
            limits=limits.memory_only(),
        )
        stored = image_service.upload(context, image_meta, tmp.path)
    LOG.info(
        "Copied volume %s into %s image %s in %.3fs",
        volume_id,
        disk_format,
        image_meta.get("id"),
        time.monotonic() - started,
    )
    return stored
