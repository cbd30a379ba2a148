"""Adopting files that are already in a pool, and letting volumes go.

A manage reference is ``{"source-name": NAME}``: a plain file in the pool
(for a volume) or in ``.snapshots/volume-<id>/`` (for a snapshot of that
volume). Managing renames it to ``volume-<id>`` / ``snapshot-<id>``.
Unmanaging renames it to ``unmanaged-volume-<id>`` /
``unmanaged-snapshot-<id>``: the data stays, under a name that no longer
counts as a volume (stats) or a snapshot (delete_volume), and that
get_manageable_* offers for managing again.
"""

from __future__ import annotations

import logging
import math
import os
import stat
from collections.abc import Callable
from typing import Any

from volworker import exception

from . import names
from .fsdir import Dir
from .store import GiB

__all__ = ["adopt", "entry", "reference_size", "release", "size_gb"]

LOG = logging.getLogger(__name__)


def _invalid(ref: Any, reason: str) -> exception.ManageExistingInvalidReference:
    return exception.ManageExistingInvalidReference(existing_ref=ref, reason=reason)


def _referenced(where: Dir | None, ref: Any) -> tuple[str, os.stat_result]:
    """The name and status of the regular file ``ref`` names in ``where``."""
    name = names.reference_name(ref)
    st = where.lstat(name) if where is not None else None
    if st is None:
        raise _invalid(ref, f"there is no file {name!r} where it should be")
    if stat.S_ISLNK(st.st_mode):
        raise _invalid(ref, f"{name!r} is a symbolic link, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise _invalid(ref, f"{name!r} is not a regular file")
    return name, st


def size_gb(st: os.stat_result) -> int:
    """A file's size in GiB, rounded up."""
    return math.ceil(st.st_size / GiB)


def reference_size(where: Dir | None, ref: Any) -> int:
    return size_gb(_referenced(where, ref)[1])


def adopt(
    where: Dir | None,
    ref: Any,
    target: str,
    is_busy: Callable[[str], str | None] = lambda name: None,
) -> None:
    """Rename the file ``ref`` names to ``target`` (never over another file).

    Redoing a finished adoption succeeds: ``target`` is there and the
    reference is gone, or both are names of one file.
    """
    name = names.reference_name(ref)
    if where is None:
        raise _invalid(ref, f"there is no file {name!r} in the pool")
    if name != target and where.lstat(name) is None and where.regular(target):
        LOG.info("%s was adopted already", where.join(target))
        return
    name, st = _referenced(where, ref)
    if name == target:
        return
    busy = is_busy(name)
    if busy:
        raise _invalid(ref, busy)
    existing = where.regular(target)
    if existing is None:
        where.move(name, where, target)
        LOG.info("Adopted %s as %s", where.join(name), target)
    elif (existing.st_dev, existing.st_ino) == (st.st_dev, st.st_ino):
        where.unlink(name)  # a crash left both names of one file
    else:
        raise exception.VolumeBackendAPIException(
            data=f"cannot manage {name!r}: {where.join(target)} already exists"
        )


def release(where: Dir | None, name: str) -> None:
    """Rename ``name`` to ``unmanaged-<name>``; nothing to do when it is
    gone already."""
    target = names.UNMANAGED_PREFIX + name
    if where is None or where.regular(name) is None:
        LOG.warning("Nothing to unmanage: %s is not in the pool", name)
        return
    where.move(name, where, target)
    LOG.info("Released %s as %s", where.join(name), target)


def entry(
    name: str,
    st: os.stat_result,
    cinder_id: str | None,
    unsafe: str | None,
    extra_info: str,
) -> dict[str, Any]:
    """One row of a get_manageable_* listing."""
    regular = stat.S_ISREG(st.st_mode)
    if cinder_id:
        unsafe = "already managed"
    elif not regular:
        unsafe = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
    return {
        "reference": {"source-name": name},
        "size": size_gb(st) if regular else 0,
        "safe_to_manage": unsafe is None,
        "reason_not_safe": unsafe,
        "cinder_id": cinder_id,
        "extra_info": extra_info,
    }
