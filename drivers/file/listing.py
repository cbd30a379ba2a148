"""What the pools hold that could be managed: the rows of
get_manageable_volumes and get_manageable_snapshots, before paging."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from volworker import exception

from . import names
from .adoption import entry
from .fsdir import Dir
from .pools import Pool

__all__ = ["manageable_snapshots", "manageable_volumes"]

LOG = logging.getLogger(__name__)


@contextmanager
def _opened(pool: Pool) -> Iterator[Dir | None]:
    """The pool directory, or None (with a warning) when it cannot be read:
    one missing pool must not hide what the others hold."""
    try:
        root = pool.open()
    except exception.VolumeBackendAPIException as exc:
        LOG.warning("Not listing pool %s: %s", pool.name, exc)
        yield None
        return
    with root:
        yield root


def _volume_rows(
    pool: Pool, root: Dir, managed: dict[str, str], exported: Callable[[str], bool]
) -> list[dict[str, Any]]:
    rows = []
    for name in root.names():
        st = None if name.startswith(".") else root.lstat(name)
        if st is None:
            continue
        volume_id = names.volume_id_of(name)
        unsafe = "exported over NBD" if volume_id and exported(volume_id) else None
        rows.append(entry(name, st, managed.get(name), unsafe, f"pool {pool.name}"))
    return rows


def manageable_volumes(
    pools: Iterable[Pool],
    managed: dict[str, str],
    exported: Callable[[str], bool],
) -> list[dict[str, Any]]:
    """Every visible file at the top of each pool. ``managed`` maps the file
    names of the worker's volumes to their ids."""
    rows = []
    for pool in pools:
        with _opened(pool) as root:
            if root is not None:
                rows += _volume_rows(pool, root, managed, exported)
    return rows


def _snapshot_rows(
    pool: Pool,
    root: Dir,
    top: Dir,
    volume_dir: str,
    managed: dict[tuple[str, str], str],
) -> list[dict[str, Any]]:
    try:
        snaps = top.subdir(volume_dir)
    except exception.VolumeBackendAPIException as exc:
        LOG.warning("Not listing snapshots in %s: %s", top.path, exc)
        return []
    if snaps is None:
        return []
    gone = (
        None if root.lstat(volume_dir) else f"{volume_dir} is not in pool {pool.name}"
    )
    rows = []
    with snaps:
        for name in snaps.names():
            st = None if name.startswith(".") else snaps.lstat(name)
            if st is None:
                continue
            row = entry(
                name, st, managed.get((volume_dir, name)), gone, f"pool {pool.name}"
            )
            row["source_reference"] = {"source-name": volume_dir}
            rows.append(row)
    return rows


def manageable_snapshots(
    pools: Iterable[Pool], managed: dict[tuple[str, str], str]
) -> list[dict[str, Any]]:
    """Every visible file in each ``.snapshots/volume-<id>/``. ``managed``
    maps (volume file name, snapshot file name) of the worker's snapshots to
    their ids."""
    rows = []
    for pool in pools:
        with _opened(pool) as root:
            top = root.subdir(names.SNAPSHOTS_DIR) if root else None
            if root is None or top is None:
                continue
            with top:
                for volume_dir in top.names():
                    if names.volume_id_of(volume_dir):
                        rows += _snapshot_rows(pool, root, top, volume_dir, managed)
    return rows
