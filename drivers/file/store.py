"""Volumes and snapshots as files in one pool directory.

Every function takes the pool directory, opened (:class:`Dir`), and ids that
:mod:`names` has checked. New objects are made as temp files and linked into
place, so a name either holds a whole object or nothing; a redone operation
whose object already exists succeeds without touching it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from volworker import exception

from . import names
from .copy import clone_into, try_reflink
from .fsdir import Dir
from .tempfiles import TempFile, clear_earlier

__all__ = [
    "GiB",
    "create_snapshot",
    "create_volume",
    "delete_snapshot",
    "delete_volume",
    "extend_volume",
    "new_volume_from",
    "open_snapshot",
    "open_volume",
    "probe_reflink",
    "replace_volume_from",
    "snapshot_names",
    "snapshots_dir",
]

LOG = logging.getLogger(__name__)

GiB = 1024**3


@contextmanager
def _fd(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def open_volume(root: Dir, volume_id: str, flags: int = os.O_RDONLY) -> Iterator[int]:
    """An open descriptor of the volume; VolumeNotFound when it is missing."""
    try:
        fd = root.open_file(names.volume_file(volume_id), flags)
    except FileNotFoundError:
        raise exception.VolumeNotFound(volume_id=volume_id) from None
    with _fd(fd):
        yield fd


@contextmanager
def snapshots_dir(
    root: Dir, volume_id: str, create: bool = False
) -> Iterator[Dir | None]:
    """``.snapshots/volume-<id>`` of the pool, or None when it is missing."""
    top = root.subdir(names.SNAPSHOTS_DIR, create=create)
    if top is None:
        yield None
        return
    with top:
        sub = top.subdir(names.snapshot_dir(volume_id), create=create)
    if sub is None:
        yield None
        return
    with sub:
        yield sub


@contextmanager
def open_snapshot(root: Dir, volume_id: str, snapshot_id: str) -> Iterator[int]:
    """An open descriptor of the snapshot; SnapshotNotFound when missing."""
    with snapshots_dir(root, volume_id) as snaps:
        try:
            if snaps is None:
                raise FileNotFoundError
            fd = snaps.open_file(names.snapshot_file(snapshot_id), os.O_RDONLY)
        except FileNotFoundError:
            raise exception.SnapshotNotFound(snapshot_id=snapshot_id) from None
    with _fd(fd):
        yield fd


def _exists(where: Dir, name: str, size: int | None) -> bool:
    """Whether ``name`` is already a whole object (of ``size`` bytes)."""
    st = where.regular(name)
    if st is None:
        return False
    if size is not None and st.st_size != size:
        raise exception.VolumeBackendAPIException(
            data=f"{where.join(name)} already exists with {st.st_size} bytes, "
            f"not the {size} asked for"
        )
    LOG.info("%s already exists; nothing to do", where.join(name))
    return True


def create_volume(root: Dir, volume_id: str, size: int) -> None:
    """A new sparse file of ``size`` bytes: it reads as zeros, and never as
    the bytes of a volume deleted before it."""
    name = names.volume_file(volume_id)
    if _exists(root, name, size):
        clear_earlier(root, name)
        return
    with TempFile(root, name) as tmp:
        os.ftruncate(tmp.fd, size)
        tmp.link_as(root, name)


def new_volume_from(root: Dir, volume_id: str, src_fd: int, size: int) -> str | None:
    """A new volume of ``size`` bytes holding ``src_fd``'s data; the copy
    method, or None when the volume existed already."""
    src_size = os.fstat(src_fd).st_size
    if size < src_size:
        raise exception.InvalidInput(
            reason=f"volume {volume_id} of {size} bytes cannot hold a source of "
            f"{src_size} bytes; volumes never shrink"
        )
    name = names.volume_file(volume_id)
    if _exists(root, name, size):
        clear_earlier(root, name)
        return None
    with TempFile(root, name) as tmp:
        method = clone_into(src_fd, tmp.fd, size)
        tmp.link_as(root, name)
    return method


def replace_volume_from(root: Dir, volume_id: str, src_fd: int) -> str:
    """Make the volume's data that of ``src_fd``, atomically; its size stays
    (or grows to the source's)."""
    name = names.volume_file(volume_id)
    with open_volume(root, volume_id) as fd:
        size = os.fstat(fd).st_size
    with TempFile(root, name) as tmp:
        method = clone_into(src_fd, tmp.fd, size)
        root.regular(name)  # still a regular file, not something planted
        tmp.replace(root, name)
    return method


def delete_volume(root: Dir, volume_id: str) -> bool:
    """Remove the volume's file; False when there was none."""
    name = names.volume_file(volume_id)
    if root.regular(name) is None:
        return False
    root.unlink(name)
    root.sync()
    _prune_snapshots_dir(root, volume_id)
    return True


def extend_volume(root: Dir, volume_id: str, size: int, *, strict: bool = True) -> bool:
    """Grow the volume to ``size`` bytes; False when it was that large.

    A smaller ``size`` is InvalidInput (volumes never shrink), or with
    ``strict`` False simply leaves the volume as it is.
    """
    with open_volume(root, volume_id, os.O_RDWR) as fd:
        current = os.fstat(fd).st_size
        if size < current and strict:
            raise exception.InvalidInput(
                reason=f"volume {volume_id} has {current} bytes; it cannot "
                f"shrink to {size}"
            )
        if size <= current:
            return False
        os.ftruncate(fd, size)
        os.fsync(fd)
    return True


def probe_reflink(root: Dir) -> bool:
    """Whether the pool's filesystem makes reflinks."""
    with TempFile(root, "probe") as src, TempFile(root, "probe") as dst:
        os.pwrite(src.fd, b"\0" * 4096, 0)
        return try_reflink(src.fd, dst.fd)


def snapshot_names(root: Dir, volume_id: str) -> list[str]:
    """The managed snapshots (``snapshot-<uuid>``) the volume has."""
    with snapshots_dir(root, volume_id) as snaps:
        if snaps is None:
            return []
        return [n for n in snaps.names() if names.snapshot_id_of(n)]


def create_snapshot(root: Dir, volume_id: str, snapshot_id: str) -> str | None:
    """A point-in-time copy of the volume; the copy method, or None when the
    snapshot existed already."""
    name = names.snapshot_file(snapshot_id)
    with (
        open_volume(root, volume_id) as src,
        snapshots_dir(root, volume_id, create=True) as snaps,
    ):
        assert snaps is not None
        if _exists(snaps, name, None):
            clear_earlier(root, name)
            return None
        with TempFile(root, name) as tmp:
            method = clone_into(src, tmp.fd)
            tmp.link_as(snaps, name)
    return method


def delete_snapshot(root: Dir, volume_id: str, snapshot_id: str) -> bool:
    """Remove the snapshot's file; False when there was none."""
    name = names.snapshot_file(snapshot_id)
    with snapshots_dir(root, volume_id) as snaps:
        if snaps is None or snaps.regular(name) is None:
            return False
        snaps.unlink(name)
        snaps.sync()
    _prune_snapshots_dir(root, volume_id)
    return True


def _prune_snapshots_dir(root: Dir, volume_id: str) -> None:
    """Remove the volume's snapshot directory once nothing is left in it."""
    top = root.subdir(names.SNAPSHOTS_DIR)
    if top is not None:
        with top:
            top.rmdir_if_empty(names.snapshot_dir(volume_id))
