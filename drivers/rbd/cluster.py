"""The driver's connection to the Ceph cluster: opened once by do_setup and
shared by every call (librados is thread-safe and lets go of the GIL while
it waits), reopened only after the cluster has shut it.

The ``rados`` and ``rbd`` modules come from the distribution (python3-rados,
python3-rbd), not from PyPI, so they are imported here, when a backend of
this driver is set up, and their absence is one clear line.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from volworker import exception

__all__ = ["Cluster", "Settings", "bindings"]

LOG = logging.getLogger(__name__)

#: errno of the errors after which a connection is no use (the client was
#: blocklisted, or the cluster closed it) and must be made anew.
DEAD_CONNECTION = frozenset({errno.ESHUTDOWN, errno.ENOTCONN})


def bindings() -> tuple[ModuleType, ModuleType]:
    """The ``rados`` and ``rbd`` modules, or a clear error without them."""
    try:
        import rados
        import rbd
    except ImportError as exc:
        raise exception.VolumeBackendAPIException(
            data=f"the Python modules rados and rbd cannot be imported ({exc}): "
            "install python3-rados and python3-rbd (scripts/bootstrap links "
            "them into its virtualenv)"
        ) from exc
    return rados, rbd


@dataclass(frozen=True)
class Settings:
    """What the driver's options say about reaching the cluster."""

    pool: str
    user: str | None
    conffile: str
    cluster_name: str
    timeout: int
    attempts: int
    interval: float

    @classmethod
    def from_config(cls, conf: Any) -> Settings:
        return cls(
            pool=conf.rbd_pool,
            user=conf.rbd_user or None,
            conffile=conf.rbd_ceph_conf or "",
            cluster_name=conf.rbd_cluster_name,
            timeout=conf.rados_connect_timeout,
            attempts=conf.rados_connection_retries,
            interval=float(conf.rados_connection_interval),
        )

    @property
    def entity(self) -> str:
        return f"client.{self.user or 'admin'}"


def _connect_error(exc: Exception, settings: Settings, where: str) -> Exception:
    """What a failed connect means, as the contract's error."""
    code = getattr(exc, "errno", None)
    if code == errno.ETIMEDOUT:
        return exception.BackendUnavailable(
            data=f"no Ceph monitor answered within {settings.timeout}s (mon_host "
            f"{where})"
        )
    if code in (errno.EACCES, errno.EPERM):
        return exception.VolumeBackendAPIException(
            data=f"Ceph refused {settings.entity} (mon_host {where}): a wrong key, "
            "or no such user"
        )
    if code == errno.ENOENT:
        return exception.VolumeBackendAPIException(
            data=f"no key for {settings.entity}: set 'keyring' in "
            f"{settings.conffile or 'ceph.conf'} or put it in /etc/ceph/"
            f"{settings.cluster_name}.{settings.entity}.keyring"
        )
    return exception.VolumeBackendAPIException(
        data=f"cannot connect to Ceph as {settings.entity} (mon_host {where}): {exc}"
    )


class Cluster:
    """One librados client and the I/O context of the backend's pool."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rados, self.rbd = bindings()
        self._lock = threading.Lock()
        self._client: Any = None
        self._ioctxs: dict[str, Any] = {}

    def _new_client(self) -> Any:
        s = self.settings
        try:
            client = self.rados.Rados(
                rados_id=s.user, clustername=s.cluster_name, conffile=s.conffile
            )
        except self.rados.Error as exc:
            raise exception.VolumeBackendAPIException(
                data=f"cannot read the Ceph configuration "
                f"{s.conffile or '(librados default)'}: {exc}"
            ) from exc
        if s.timeout >= 0:
            for option in (
                "client_mount_timeout",
                "rados_mon_op_timeout",
                "rados_osd_op_timeout",
            ):
                client.conf_set(option, str(s.timeout))
        return client

    def _connect_once(self) -> Any:
        client = self._new_client()
        where = client.conf_get("mon_host") or "unset"
        try:
            client.connect()
        except self.rados.Error as exc:
            client.shutdown()
            raise _connect_error(exc, self.settings, where) from exc
        LOG.info(
            "Connected to Ceph cluster %s as %s",
            client.get_fsid(),
            self.settings.entity,
        )
        return client

    def connect(self) -> None:
        """Connect, trying again on timeouts; BackendUnavailable when the
        cluster does not answer, VolumeBackendAPIException when it refuses."""
        with self._lock:
            if self._client is not None:
                return
            attempt = 1
            while True:
                try:
                    self._client = self._connect_once()
                    return
                except exception.BackendUnavailable as exc:
                    if attempt >= self.settings.attempts:
                        raise
                    LOG.warning(
                        "Ceph connection attempt %d of %d failed: %s",
                        attempt,
                        self.settings.attempts,
                        exc,
                    )
                attempt += 1
                time.sleep(self.settings.interval)

    def ioctx(self, pool: str | None = None) -> Any:
        """The I/O context of ``pool`` (default: the backend's), opened once."""
        name = pool or self.settings.pool
        found = self._ioctxs.get(name)
        if found is not None:
            return found
        self.connect()
        with self._lock:
            if name not in self._ioctxs:
                try:
                    self._ioctxs[name] = self._client.open_ioctx(name)
                except self.rados.ObjectNotFound as exc:
                    raise exception.VolumeBackendAPIException(
                        data=f"Ceph pool {name} does not exist"
                    ) from exc
            return self._ioctxs[name]

    def command(self, prefix: str, **args: Any) -> Any:
        """A monitor (or manager) command's JSON answer."""
        self.connect()
        cmd = json.dumps({"prefix": prefix, "format": "json", **args})
        ret, out, err = self._client.mon_command(cmd, b"")
        if ret != 0:
            raise exception.VolumeBackendAPIException(
                data=f"ceph {prefix} failed: {err or ret}"
            )
        return json.loads(out) if out else None

    @property
    def address(self) -> str:
        """This client's address, as OSDs and blocklists name it."""
        self.connect()
        return str(self._client.get_addrs())

    def wait_for_latest_osdmap(self) -> None:
        self.connect()
        self._client.wait_for_latest_osdmap()

    def conf_get(self, option: str) -> str:
        self.connect()
        return str(self._client.conf_get(option))

    @property
    def fsid(self) -> str:
        self.connect()
        return str(self._client.get_fsid())

    def is_dead(self, exc: BaseException) -> bool:
        return getattr(exc, "errno", None) in DEAD_CONNECTION

    def reset(self) -> None:
        """Drop the connection; the next call connects anew."""
        with self._lock:
            client, self._client, self._ioctxs = self._client, None, {}
        if client is not None:
            LOG.warning("Ceph connection lost; reconnecting on the next call")
            client.shutdown()

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            ioctxs, self._ioctxs = self._ioctxs, {}
        for ioctx in ioctxs.values():
            ioctx.close()
        if client is not None:
            client.shutdown()
