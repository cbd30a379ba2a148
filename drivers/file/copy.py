"""Copy a volume's data: a reflink where the filesystem can, else a sparse copy.

A reflink (``ioctl FICLONE``, XFS with reflink=1, btrfs) shares the source's
blocks, so it takes the same time for 1 GiB as for 10 GiB. Where there is no
reflink (ext4, or across filesystems) the copy walks the source's data
extents with ``SEEK_DATA``/``SEEK_HOLE`` and copies only those, so holes stay
holes.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from collections.abc import Iterator

__all__ = ["REFLINK", "SPARSE_COPY", "clone_into", "data_extents", "try_reflink"]

LOG = logging.getLogger(__name__)

#: ioctl number of FICLONE (linux/fs.h: _IOW(0x94, 9, int)).
FICLONE = 0x40049409
REFLINK = "reflink"
SPARSE_COPY = "sparse-copy"

_CHUNK = 64 * 1024**2
# The errors by which FICLONE says "not here" (no support, other
# filesystem), as opposed to a real failure such as ENOSPC or EIO.
_NO_REFLINK = {
    errno.EOPNOTSUPP,
    errno.ENOTTY,
    errno.EXDEV,
    errno.EINVAL,
    errno.ENOSYS,
    errno.EBADF,
}
_NO_COPY_FILE_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}


def try_reflink(src_fd: int, dst_fd: int) -> bool:
    """Make ``dst_fd`` share ``src_fd``'s blocks; False when it cannot."""
    try:
        fcntl.ioctl(dst_fd, FICLONE, src_fd)
    except OSError as exc:
        if exc.errno in _NO_REFLINK:
            return False
        raise
    return True


def data_extents(fd: int, length: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each run of data in the first ``length`` bytes."""
    offset = 0
    while offset < length:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return  # only a hole is left
            if exc.errno != errno.EINVAL:
                raise
            yield offset, length  # no SEEK_DATA here: treat all as data
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), length)
        if end <= start:
            return
        yield start, end
        offset = end


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        # A short write is how a filesystem says it is nearly full;
        # the next write then fails with ENOSPC instead of losing data.
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _copy_range(src_fd: int, dst_fd: int, start: int, end: int) -> None:
    use_kernel = True
    offset = start
    while offset < end:
        count = min(_CHUNK, end - offset)
        done = 0
        if use_kernel:
            try:
                done = os.copy_file_range(src_fd, dst_fd, count, offset, offset)
            except OSError as exc:
                if exc.errno not in _NO_COPY_FILE_RANGE:
                    raise
                use_kernel = False
        if not use_kernel:
            data = os.pread(src_fd, count, offset)
            done = len(data)
            _write_all(dst_fd, data, offset)
        if done == 0:
            return  # the source got shorter while we copied
        offset += done


def sparse_copy(src_fd: int, dst_fd: int) -> None:
    """Copy the data of ``src_fd`` into the empty ``dst_fd``, keeping holes."""
    length = os.fstat(src_fd).st_size
    os.ftruncate(dst_fd, length)
    for start, end in data_extents(src_fd, length):
        _copy_range(src_fd, dst_fd, start, end)


def clone_into(src_fd: int, dst_fd: int, size: int = 0) -> str:
    """Fill the new, empty ``dst_fd`` with ``src_fd``'s data, then extend it
    to ``size`` bytes if that is larger; return the method used."""
    if try_reflink(src_fd, dst_fd):
        method = REFLINK
    else:
        sparse_copy(src_fd, dst_fd)
        method = SPARSE_COPY
    if size > os.fstat(dst_fd).st_size:
        os.ftruncate(dst_fd, size)
    LOG.debug("Copied %d bytes by %s", os.fstat(src_fd).st_size, method)
    return method
