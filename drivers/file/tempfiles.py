"""Objects are made in ``<pool>/.tmp`` and only then given their real name.

A crash therefore never leaves a half-made volume or snapshot under a real
name: what it leaves is a temp file, which :func:`clear_stale` removes at the
next start, or the next attempt at the same object removes (another member
of a cluster redoing a dead member's work). A temp file is locked
(``flock``) for as long as it is in use, so a worker never removes a file
that another one is still writing.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import stat
from types import TracebackType

from .fsdir import Dir
from .names import TMP_DIR

__all__ = ["TempFile", "clear_earlier", "clear_stale"]

LOG = logging.getLogger(__name__)


class TempFile:
    """A new, empty, locked file in ``<pool>/.tmp``.

    Leave the ``with`` block without :meth:`link_as` or :meth:`replace` and
    the file is removed.
    """

    def __init__(self, root: Dir, purpose: str) -> None:
        self._root = root
        self._purpose = purpose
        self._dir: Dir | None = None
        self.name = ""
        self.fd = -1

    def __enter__(self) -> TempFile:
        tmp = self._root.subdir(TMP_DIR, create=True)
        assert tmp is not None
        try:
            _clear_earlier_in(tmp, self._purpose)
        except BaseException:
            tmp.close()
            raise
        self.name = f"{self._purpose}.{secrets.token_hex(8)}"
        try:
            self.fd = tmp.open_file(self.name, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        except BaseException:
            tmp.close()
            raise
        self._dir = tmp
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._dir is not None
        try:
            self._dir.unlink(self.name)
        finally:
            os.close(self.fd)
            self._dir.close()

    @property
    def path(self) -> str:
        """The file's path, for services that want one."""
        assert self._dir is not None
        return self._dir.join(self.name)

    def link_as(self, dest: Dir, name: str) -> None:
        """Give the finished file its real name; FileExistsError if taken.

        The data is made durable first, so after a crash the real name never
        holds less than was written.
        """
        assert self._dir is not None
        os.fsync(self.fd)
        self._dir.link(self.name, dest, name)
        dest.sync()

    def replace(self, dest: Dir, name: str) -> None:
        """Put the finished file in place of ``name`` atomically."""
        assert self._dir is not None
        os.fsync(self.fd)
        self._dir.replace(self.name, dest, name)
        dest.sync()


def _stale(tmp: Dir, name: str) -> bool:
    st = tmp.lstat(name)
    if st is None:
        return False
    if not stat.S_ISREG(st.st_mode):
        # The driver only ever makes regular files here; a symlink is
        # removed as a link (its target is not touched), a directory is left.
        return stat.S_ISLNK(st.st_mode)
    fd = tmp.open_file(name, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # another process is still making it
    finally:
        os.close(fd)
    return True


def clear_earlier(root: Dir, purpose: str) -> None:
    """Remove what earlier, dead attempts at ``purpose`` left in the pool
    (a redo finding the object already whole makes no temp file of its own)."""
    tmp = root.subdir(TMP_DIR)
    if tmp is not None:
        with tmp:
            _clear_earlier_in(tmp, purpose)


def _clear_earlier_in(tmp: Dir, purpose: str) -> None:
    for name in tmp.names():
        if name.startswith(purpose + ".") and _stale(tmp, name) and tmp.unlink(name):
            LOG.info("Removed %s, left by an attempt that died", name)


def clear_stale(root: Dir) -> int:
    """Remove the temp files no process is using; return how many."""
    tmp = root.subdir(TMP_DIR)
    if tmp is None:
        return 0
    removed = 0
    with tmp:
        for name in tmp.names():
            if _stale(tmp, name) and tmp.unlink(name):
                removed += 1
    if removed:
        LOG.info("Removed %d stale temp files from %s", removed, tmp.path)
    return removed
