"""The pools of a file backend: parsing ``file_pools``, making the pool
directories, and saying exactly what is wrong with one."""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from volworker import exception
from volworker.objects import Volume

from .fsdir import Dir

__all__ = ["Pool", "PoolSet", "parse_pools", "pool_problems"]

LOG = logging.getLogger(__name__)

_POOL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Pool:
    name: str
    path: str

    def open(self) -> Dir:
        """The pool directory, opened; a clear error when it is not there."""
        try:
            return Dir.open(self.path)
        except OSError as exc:
            raise exception.VolumeBackendAPIException(
                data=f"pool {self.name}: cannot open its directory {self.path}: "
                f"{exc.strerror or exc}"
            ) from exc


def _parse_one(item: str) -> Pool:
    item = item.strip()
    if item.startswith("/"):
        name, path = "", item
    else:
        name, sep, path = item.partition(":")
        if not sep:
            raise exception.InvalidInput(
                reason=f"file_pools item {item!r} is neither NAME:/path nor an "
                "absolute path"
            )
    if not os.path.isabs(path):
        raise exception.InvalidInput(
            reason=f"file_pools item {item!r}: {path!r} is not an absolute path"
        )
    path = os.path.normpath(path)
    name = name or os.path.basename(path)
    if not _POOL_NAME.fullmatch(name):
        raise exception.InvalidInput(
            reason=f"file_pools item {item!r}: pool name {name!r} must be "
            "letters, digits, '_', '.' and '-'"
        )
    return Pool(name, os.path.realpath(path))


def parse_pools(items: Iterable[str]) -> list[Pool]:
    """The pools named by ``file_pools``; InvalidInput when malformed."""
    pools = [_parse_one(item) for item in items if item.strip()]
    if not pools:
        raise exception.InvalidInput(reason="file_pools names no pool")
    for attr in ("name", "path"):
        seen: set[str] = set()
        for pool in pools:
            value = getattr(pool, attr)
            if value in seen:
                raise exception.InvalidInput(
                    reason=f"file_pools: two pools have the {attr} {value!r}"
                )
            seen.add(value)
    return pools


class PoolSet:
    """The pools of one backend; the first is the default."""

    def __init__(self, pools: Sequence[Pool]) -> None:
        self._pools = {pool.name: pool for pool in pools}
        self.default = pools[0]

    def __iter__(self) -> Iterator[Pool]:
        return iter(self._pools.values())

    def get(self, name: str | None) -> Pool:
        if name is None:
            return self.default
        try:
            return self._pools[name]
        except KeyError:
            raise exception.InvalidInput(
                reason=f"pool {name!r} is not one of this backend's pools "
                f"({', '.join(self._pools)})"
            ) from None

    def of(self, volume: Volume) -> Pool:
        """The pool ``volume.host`` names after '#', or the default pool."""
        return self.get(volume.pool)


def make_dir(pool: Pool) -> None:
    """Create the pool directory when it is missing and its parent exists."""
    parent = os.path.dirname(pool.path)
    if os.path.isdir(parent) and not os.path.lexists(pool.path):
        try:
            os.mkdir(pool.path, 0o700)
            LOG.info("Created the directory %s of pool %s", pool.path, pool.name)
        except FileExistsError:
            pass


def _writable_problem(pool: Pool) -> str | None:
    if os.statvfs(pool.path).f_flag & os.ST_RDONLY:
        return f"pool {pool.name}: {pool.path} is on a read-only filesystem"
    if not os.access(pool.path, os.W_OK | os.X_OK):
        return f"pool {pool.name}: {pool.path} is not writable by uid {os.geteuid()}"
    probe = os.path.join(pool.path, f".probe-{os.getpid()}")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            return f"pool {pool.name}: {pool.path} is on a read-only filesystem"
        return f"pool {pool.name}: cannot create files in {pool.path}: {exc.strerror}"
    return None


def pool_problems(pool: Pool) -> list[str]:
    """What keeps the pool from being used, in words; empty when usable."""
    if not os.path.lexists(pool.path):
        parent = os.path.dirname(pool.path)
        if not os.path.isdir(parent):
            return [
                f"pool {pool.name}: directory {pool.path} does not exist and "
                f"cannot be created because its parent {parent} does not exist"
            ]
        return [f"pool {pool.name}: directory {pool.path} does not exist"]
    if not os.path.isdir(pool.path) or os.path.islink(pool.path):
        return [f"pool {pool.name}: {pool.path} is not a directory"]
    problem = _writable_problem(pool)
    return [problem] if problem else []
