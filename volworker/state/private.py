"""Directories and files only the worker may read, whatever the umask.

The state directory holds the database (rows carry secrets such as
``provider_auth``), the locks and the drivers' runtime files. systemd's unit
gives it mode 0700 and a 0077 umask; a worker started any other way makes
them private itself.
"""

from __future__ import annotations

import logging
import os
import stat

__all__ = ["private_dir", "private_file"]

LOG = logging.getLogger(__name__)


def private_dir(path: str) -> None:
    """Make ``path`` (and its missing parents) with mode 0700; warn when it
    exists already and others may enter it (an operator's choice, kept)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            LOG.warning(
                "%s has mode %04o: others than the worker may read it", path, mode
            )
        return
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mkdir(path, 0o700)
    # The umask may have taken bits the owner needs.
    os.chmod(path, 0o700)


def private_file(path: str) -> None:
    """Create ``path`` if missing; either way its mode is 0600."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
