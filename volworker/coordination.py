"""What the workers of one backend agree on through tooz: locks, and, in a
cluster, who is alive.

Within a process, :mod:`volworker.ordering` already runs one operation per
volume at a time. Across processes, tooz locks do, in one of two ways:

- Without a cluster, a backend belongs to one process: it claims the
  backend's *service lock* at start and holds it until it exits, so a second
  process started by mistake for the same ``<host>@<backend>`` refuses to
  start instead of splitting the queue and racing the first. No per-volume
  lock is needed then.
- The members of a cluster share a backend: each operation takes a tooz lock
  per volume it touches (``redis://`` or another shared tooz backend).

Per-volume locks are taken sorted, so two operations that touch the same
volumes never deadlock, and every acquisition is timed and logged.

The members of a cluster also join a tooz group per backend
(``volworker.<cluster>@<backend>``) and heartbeat through tooz; what each
member publishes there (its journal owner, when it last looked around) lets
the others see who is alive (:mod:`volworker.manager.takeover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Executor
from typing import Any

from oslo_config import cfg
from tooz import coordination

from volworker import exception

__all__ = ["Coordination", "coordination_opts", "register_opts"]

LOG = logging.getLogger(__name__)

SLOW_WAIT = 1.0

coordination_opts = [
    cfg.StrOpt(
        "backend_url",
        default="file://$state_path/locks",
        secret=True,
        help="The tooz coordination backend for per-volume locks: file:// for "
        "one host, redis://host:6379 (or etcd3+http://...) for the members "
        "of a cluster.",
    ),
    cfg.FloatOpt(
        "lock_timeout",
        default=300.0,
        min=1.0,
        help="Seconds an operation waits for another process to release a "
        "volume's lock before it fails.",
    ),
    cfg.FloatOpt(
        "member_timeout",
        default=30.0,
        min=3.0,
        help="In a cluster: seconds a member may go without a heartbeat "
        "before a live member takes over its unfinished operations and its "
        "attachments.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(coordination_opts, group="coordination")


def _with_member_timeout(url: str, member_timeout: float) -> str:
    """``url`` asking tooz to forget a silent member, and to let its locks
    go, within ``member_timeout`` (tooz's own default is 30 s for both),
    unless the URL says otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.startswith("file"):
        return url
    query = urllib.parse.parse_qs(parts.query)
    wanted = {
        # gone from the group well before a takeover is due
        "membership_timeout": max(1, int(member_timeout // 3)),
        # a dead member's volume locks free by the time its work is taken
        "lock_timeout": max(1, int(member_timeout)),
    }
    extra = urllib.parse.urlencode({k: v for k, v in wanted.items() if k not in query})
    if not extra:
        return url
    joined = f"{parts.query}&{extra}" if parts.query else extra
    return urllib.parse.urlunsplit(parts._replace(query=joined))


class Coordination:
    """Per-volume tooz locks, taken and released on an executor, and the
    membership of a cluster's groups."""

    def __init__(
        self,
        backend_url: str,
        member_id: str,
        prefix: str,
        timeout: float,
        executor: Executor,
        *,
        per_volume: bool,
        member_timeout: float = 30.0,
    ) -> None:
        #: whether operations take a lock per volume (the cluster case)
        self.per_volume = per_volume
        self.member_timeout = member_timeout
        self._url = backend_url
        self._member_id = member_id.encode()
        self._prefix = prefix
        self._timeout = timeout
        self._executor = executor
        self._coordinator: Any = None
        self._held_services: list[Any] = []

    def start(self) -> None:
        url = self._url
        if self.per_volume:
            url = _with_member_timeout(url, self.member_timeout)
        self._coordinator = coordination.get_coordinator(url, self._member_id)
        self._coordinator.start(start_heart=True)

    # -- membership (blocking: call on an executor) -------------------------

    def _group(self, name: str) -> bytes:
        return f"{self._prefix}.{name}".encode()

    def join(self, group: str, capabilities: dict[str, Any]) -> None:
        """Join ``group`` (made if need be) with ``capabilities``."""
        try:
            self._coordinator.join_group_create(
                self._group(group), capabilities=capabilities
            )
        except coordination.MemberAlreadyExist:
            self.update(group, capabilities)

    def update(self, group: str, capabilities: dict[str, Any]) -> None:
        self._coordinator.update_capabilities(self._group(group), capabilities).get()

    def members(self, group: str) -> dict[str, dict[str, Any]]:
        """The live members of ``group`` and what each one published."""
        found = self._coordinator.get_members_with_capabilities(
            self._group(group)
        ).get()
        return {
            (member.decode() if isinstance(member, bytes) else str(member)): (
                caps if isinstance(caps, dict) else {}
            )
            for member, caps in found.items()
        }

    def claim_service(self, service: str) -> None:
        """Hold ``service``'s lock for the life of the process, or raise.

        The lock goes when the process does (tooz file locks are released by
        the kernel, others expire with the coordinator's heartbeat).
        """
        lock = self._coordinator.get_lock(f"{self._prefix}.service.{service}".encode())
        if not lock.acquire(blocking=False):
            raise exception.VolumeBackendAPIException(
                data=f"{service} is already served by another volworker process "
                f"(its lock at {self._url.split('://')[0]}:// is held)"
            )
        self._held_services.append(lock)

    def stop(self) -> None:
        for lock in self._held_services:
            lock.release()
        self._held_services.clear()
        if self._coordinator is not None:
            self._coordinator.stop()
            self._coordinator = None

    def _acquire(self, keys: Sequence[str]) -> tuple[list[Any], float]:
        started = time.monotonic()
        held: list[Any] = []
        try:
            for key in keys:
                lock = self._coordinator.get_lock(f"{self._prefix}.{key}".encode())
                if not lock.acquire(blocking=self._timeout):
                    raise exception.VolumeIsBusy(
                        volume_id=key,
                        reason="another process held its lock for "
                        f"{self._timeout:.0f}s",
                    )
                held.append(lock)
        except BaseException:
            self._release(held)
            raise
        return held, time.monotonic() - started

    @staticmethod
    def _release(held: list[Any]) -> None:
        for lock in reversed(held):
            try:
                if not lock.release():
                    LOG.warning("Lock %s was not held at release", lock.name)
            except Exception:
                LOG.exception("Releasing lock %s failed", lock.name)

    @contextlib.asynccontextmanager
    async def hold(
        self, keys: Sequence[str], request_id: str = "-"
    ) -> AsyncIterator[None]:
        """Hold the locks of ``keys`` (already sorted) for the block; outside a
        cluster, a process owns its backends and this does nothing."""
        if not self.per_volume:
            yield
            return
        loop = asyncio.get_running_loop()
        held, waited = await loop.run_in_executor(self._executor, self._acquire, keys)
        log = LOG.warning if waited > SLOW_WAIT else LOG.debug
        log("[%s] Locked %s after waiting %.3fs", request_id, ",".join(keys), waited)
        acquired = time.monotonic()
        try:
            yield
        finally:
            await loop.run_in_executor(self._executor, self._release, held)
            LOG.debug(
                "[%s] Unlocked %s after holding %.3fs",
                request_id,
                ",".join(keys),
                time.monotonic() - acquired,
            )
