"""Directories held open by descriptor, so that nothing is reached through a
symbolic link.

Every operation takes one path component relative to an open directory and
uses ``O_NOFOLLOW`` / ``AT_SYMLINK_NOFOLLOW``: a symlink planted in a pool, as
a file or as a directory, is reported as an error and never followed, and no
path the driver touches can resolve outside the directory it started from.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from types import TracebackType

from volworker import exception

from .names import check_component

__all__ = ["Dir", "unsafe"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK keeps a FIFO planted under a volume's name from blocking
# the open; it changes nothing for regular files.
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def unsafe(path: str, st: os.stat_result) -> exception.VolumeBackendAPIException:
    """The error for a name that is not what the driver keeps there."""
    if stat.S_ISLNK(st.st_mode):
        what = "a symbolic link"
    elif stat.S_ISDIR(st.st_mode):
        what = "a directory"
    else:
        what = "not a regular file"
    return exception.VolumeBackendAPIException(
        data=f"refusing to use {path}: it is {what}; the file driver only "
        "uses regular files inside its pool"
    )


class Dir:
    """An open directory; ``path`` is only for messages and external tools."""

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path

    @classmethod
    def open(cls, path: str) -> Dir:
        """Open ``path``, whose last component must not be a symlink."""
        return cls(os.open(path, _DIR_FLAGS), path)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Dir:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def join(self, name: str) -> str:
        return os.path.join(self.path, name)

    def names(self) -> list[str]:
        return sorted(os.listdir(self.fd))

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry's own status (a symlink is not followed), or None."""
        try:
            return os.stat(check_component(name), dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def regular(self, name: str) -> os.stat_result | None:
        """The status of a regular file ``name``, None when there is none,
        and an error when something else stands under that name."""
        st = self.lstat(name)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise unsafe(self.join(name), st)
        return st

    def subdir(self, name: str, create: bool = False) -> Dir | None:
        """Open the subdirectory ``name`` (made when ``create``), or None."""
        check_component(name)
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=self.fd)
        try:
            return Dir(os.open(name, _DIR_FLAGS, dir_fd=self.fd), self.join(name))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                st = self.lstat(name)
                if st is not None:
                    raise unsafe(self.join(name), st) from exc
            raise

    def open_file(self, name: str, flags: int, mode: int = 0o600) -> int:
        """A descriptor of the regular file ``name``; FileNotFoundError when
        it is missing (without O_CREAT), an error when it is not a file."""
        check_component(name)
        try:
            fd = os.open(name, flags | _FILE_FLAGS, mode, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                st = self.lstat(name)
                if st is not None:
                    raise unsafe(self.join(name), st) from exc
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise unsafe(self.join(name), st)
        return fd

    def unlink(self, name: str) -> bool:
        """Remove ``name`` (never what a symlink points to); False if absent."""
        try:
            os.unlink(check_component(name), dir_fd=self.fd)
        except FileNotFoundError:
            return False
        return True

    def rmdir_if_empty(self, name: str) -> None:
        try:
            os.rmdir(check_component(name), dir_fd=self.fd)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
                raise

    def link(self, name: str, dest: Dir, dest_name: str) -> None:
        """Give the file ``name`` a second name; FileExistsError if taken."""
        os.link(
            check_component(name),
            check_component(dest_name),
            src_dir_fd=self.fd,
            dst_dir_fd=dest.fd,
            follow_symlinks=False,
        )

    def replace(self, name: str, dest: Dir, dest_name: str) -> None:
        """Rename ``name`` over ``dest_name`` atomically."""
        os.replace(
            check_component(name),
            check_component(dest_name),
            src_dir_fd=self.fd,
            dst_dir_fd=dest.fd,
        )

    def move(self, name: str, dest: Dir, dest_name: str) -> None:
        """Rename without ever replacing ``dest_name``: link, then unlink."""
        self.link(name, dest, dest_name)
        self.unlink(name)
        dest.sync()

    def sync(self) -> None:
        """Make the directory's entries durable."""
        os.fsync(self.fd)
