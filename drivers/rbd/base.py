"""What every part of the rbd driver shares: its state (the cluster
connection, the pool's images), the checks on the objects it is given, and
the translation of Ceph's errors at the driver boundary."""

from __future__ import annotations

import errno
import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from oslo_config import cfg

from volworker import exception
from volworker.driver import VolumeDriver
from volworker.objects import Snapshot, Volume
from volworker_drivers.file.base import gib

from . import names
from .cluster import Cluster
from .collect import Collector
from .images import WATCH_GRACE, Images
from .options import rbd_opts
from .store import Store

__all__ = ["RBDDriverBase", "backend_call", "gib"]

LOG = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")
_D = TypeVar("_D", bound="RBDDriverBase")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_LOCK_HELD = frozenset({errno.EROFS, errno.ESTALE})
LOCK_RETRY_INTERVAL = 1.0


def _object_of(args: Sequence[Any]) -> Volume | None:
    for arg in args:
        if isinstance(arg, Volume):
            return arg
        if isinstance(arg, Snapshot):
            return arg.volume
    return None


def _translated(
    driver: RBDDriverBase, what: str, exc: Exception, args: Any
) -> Exception:
    """A Ceph error as the contract's error (the cause is kept by the caller)."""
    code = getattr(exc, "errno", None)
    volume = _object_of(args)
    if code in _NO_SPACE:
        return exception.VolumeSizeExceedsAvailableQuota(
            requested=volume.size if volume else "?", reason=f"{what}: {exc}"
        )
    if driver.cluster_dead(exc):
        return exception.BackendUnavailable(data=f"{what}: {exc}")
    if code == errno.ETIMEDOUT:
        return exception.BackendUnavailable(data=f"{what}: Ceph did not answer: {exc}")
    if code == errno.ENOENT and volume is not None:
        return exception.VolumeNotFound(
            f"Volume {volume.id} could not be found ({what}: {exc}).",
            volume_id=volume.id,
        )
    return exception.VolumeBackendAPIException(data=f"{what} failed: {exc}")


def _is_ceph_error(exc: BaseException) -> bool:
    return type(exc).__module__ in ("rados", "rbd") or isinstance(exc, OSError)


def _held_lock(exc: BaseException) -> bool:
    """Whether librbd failed because another client holds the image's
    exclusive lock and looks alive; a worker killed with -9 keeps its locks
    until the OSDs time its watch out."""
    return getattr(exc, "errno", None) in _LOCK_HELD


def backend_call(
    func: Callable[Concatenate[_D, _P], _R],
) -> Callable[Concatenate[_D, _P], _R]:
    """Log the call's duration and translate Ceph's errors (and OSError) at
    the driver boundary.

    A call that fails on an image lock held by a client that looks alive is
    made again (every driver method can be redone) until the lock holder's
    watch must have expired.
    """

    @functools.wraps(func)
    def wrapper(self: _D, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        started = time.monotonic()
        while True:
            try:
                result = func(self, *args, **kwargs)
                break
            except exception.VolworkerError:
                raise
            except Exception as exc:
                if not _is_ceph_error(exc):
                    raise
                if not _held_lock(exc) or time.monotonic() - started > WATCH_GRACE:
                    raise _translated(self, func.__name__, exc, args) from exc
                LOG.warning("%s: %s; trying again", func.__name__, exc)
                time.sleep(LOCK_RETRY_INTERVAL)
        LOG.debug("%s done in %.3fs", func.__name__, time.monotonic() - started)
        return result

    return wrapper


def multiattach(volume: Volume) -> bool:
    """Whether the volume's type asks for several writers at once."""
    specs = volume.volume_type.extra_specs if volume.volume_type else {}
    return str(specs.get("multiattach", "")).lower() in ("<is> true", "true")


class RBDDriverBase(VolumeDriver):
    """The state and helpers of :class:`~.driver.RBDDriver`."""

    def __init__(self, configuration: Any) -> None:
        super().__init__(configuration)
        self._cluster: Cluster | None = None
        self._store: Store | None = None
        self._stats: dict[str, Any] | None = None

    @classmethod
    def get_driver_options(cls) -> Sequence[cfg.Opt]:
        return rbd_opts

    @property
    def cluster(self) -> Cluster:
        if self._cluster is None:
            raise exception.VolumeBackendAPIException(data="do_setup has not run")
        return self._cluster

    @property
    def store(self) -> Store:
        if self._store is None:
            raise exception.VolumeBackendAPIException(data="do_setup has not run")
        return self._store

    @property
    def images(self) -> Images:
        return self.store.images

    @property
    def collector(self) -> Collector:
        return self.store.collector

    def cluster_dead(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the connection is no use; if so it is
        dropped, and the next call connects anew."""
        if self._cluster is None or not self._cluster.is_dead(exc):
            return False
        self._cluster.reset()
        return True

    def close(self) -> None:
        """Let go of the cluster connection (tests, and a stopping worker)."""
        if self._cluster is not None:
            self._cluster.close()

    def _volume_id(self, volume: Volume) -> str:
        """The volume's id, once its pool is known to be this backend's."""
        pool = volume.pool
        if pool is not None and pool != self.configuration.rbd_pool:
            raise exception.InvalidInput(
                reason=f"pool {pool!r} is not this backend's pool "
                f"{self.configuration.rbd_pool!r}"
            )
        return names.check_uuid(volume.id, "volume")

    def _snapshot_ids(self, snapshot: Snapshot) -> tuple[str, str]:
        volume_id = self._volume_id(snapshot.volume)
        if snapshot.volume_id != volume_id:
            raise exception.InvalidInput(
                reason=f"snapshot {snapshot.id} names volume {snapshot.volume_id} "
                f"but carries volume {volume_id}"
            )
        return volume_id, names.check_uuid(snapshot.id, "snapshot")
