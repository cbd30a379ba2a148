"""What every part of the file driver shares: its state (pools, exports),
the pool a volume lives in, and the translation of OS errors at the driver
boundary."""

from __future__ import annotations

import errno
import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from oslo_config import cfg

from volworker import exception
from volworker.driver import VolumeDriver
from volworker.objects import Snapshot, Volume

from . import names, store
from .exports import ExportRegistry
from .fsdir import Dir
from .options import file_opts
from .pools import PoolSet

__all__ = ["FileDriverBase", "backend_call", "gib"]

LOG = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _requested_gb(args: Sequence[Any]) -> Any:
    for arg in args:
        if isinstance(arg, Volume):
            return arg.size
        if isinstance(arg, Snapshot):
            return arg.volume_size
    return "?"


def backend_call(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Log the call's duration and translate OSError at the driver boundary."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        started = time.monotonic()
        try:
            result = func(*args, **kwargs)
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                raise exception.VolumeSizeExceedsAvailableQuota(
                    requested=_requested_gb(args), reason=f"{func.__name__}: {exc}"
                ) from exc
            raise exception.VolumeBackendAPIException(
                data=f"{func.__name__} failed: {exc}"
            ) from exc
        LOG.debug("%s done in %.3fs", func.__name__, time.monotonic() - started)
        return result

    return wrapper


def gib(size: Any, what: str) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise exception.InvalidInput(reason=f"{what} {size!r} is not a size >= 1 GiB")
    return size * store.GiB


class FileDriverBase(VolumeDriver):
    """The state and helpers of :class:`~.driver.FileDriver`."""

    def __init__(self, configuration: Any) -> None:
        super().__init__(configuration)
        self._pools: PoolSet | None = None
        self._exports: ExportRegistry | None = None
        self._stats: dict[str, Any] | None = None
        #: How the last snapshot, clone or revert copied its data
        #: ("reflink" or "sparse-copy"); None before the first.
        self.last_copy_method: str | None = None
        #: Whether each pool's filesystem makes reflinks, found by do_setup.
        self.reflink: dict[str, bool] = {}

    @classmethod
    def get_driver_options(cls) -> Sequence[cfg.Opt]:
        return file_opts

    @property
    def pools(self) -> PoolSet:
        if self._pools is None:
            raise exception.VolumeBackendAPIException(data="do_setup has not run")
        return self._pools

    @property
    def exports(self) -> ExportRegistry:
        if self._exports is None:
            raise exception.VolumeBackendAPIException(data="do_setup has not run")
        return self._exports

    @contextmanager
    def _root(self, volume: Volume) -> Iterator[Dir]:
        with self.pools.of(volume).open() as root:
            yield root

    def _copied(self, method: str | None, what: str) -> None:
        if method is not None:
            self.last_copy_method = method
            LOG.debug("%s copied by %s", what, method)

    def _not_exported(self, volume_id: str, action: str) -> None:
        if self.exports.is_exported(volume_id):
            raise exception.VolumeIsBusy(
                volume_id=volume_id, reason=f"it is exported over NBD; cannot {action}"
            )

    def _snapshot_ids(self, snapshot: Snapshot) -> tuple[str, str]:
        volume_id = names.check_uuid(snapshot.volume_id, "volume")
        if snapshot.volume.id != volume_id:
            raise exception.InvalidInput(
                reason=f"snapshot {snapshot.id} names volume {volume_id} but "
                f"carries volume {snapshot.volume.id}"
            )
        return volume_id, names.check_uuid(snapshot.id, "snapshot")

    def _busy(self, name: str) -> str | None:
        volume_id = names.volume_id_of(name)
        if volume_id and self.exports.is_exported(volume_id):
            return f"{name} is exported over NBD"
        return None

    @contextmanager
    def _snapshots_of(self, snapshot: Snapshot) -> Iterator[Dir | None]:
        volume_id, _ = self._snapshot_ids(snapshot)
        with (
            self._root(snapshot.volume) as root,
            store.snapshots_dir(root, volume_id) as snaps,
        ):
            yield snaps
