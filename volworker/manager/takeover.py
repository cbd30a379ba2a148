"""The members of a cluster watch each other.

Each member of ``<cluster>@<backend>`` is in a tooz group, heartbeats
through tooz, and publishes there who it is in the journal (its owner,
``<host>@<backend>/<incarnation>``) and when it last looked around. Every
few seconds each member compares the owners of the journal's unfinished
work and of the attachments with the live members: an owner that has not
been seen for ``member_timeout`` seconds is dead, and its work is taken
over (``Manager.take_over``). Taking over re-owns the rows in one
statement, so when several members decide at once, one of them gets the
work and the others nothing.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from volworker.coordination import Coordination
from volworker.state import operations, records
from volworker.state.store import Store

__all__ = ["Watch"]

LOG = logging.getLogger(__name__)


class Watch:
    """One member's view of its cluster, and its duty to take over."""

    def __init__(
        self,
        *,
        coordination: Coordination,
        store: Store,
        executor: Executor,
        group: str,
        service: str,
        owner: str,
    ) -> None:
        self.group = group
        self.service = service
        self.owner = owner
        self.timeout = coordination.member_timeout
        #: how often a member looks around: several times per timeout
        self.interval = max(0.5, self.timeout / 6)
        self._coordination = coordination
        self._store = store
        self._executor = executor
        self._started = time.monotonic()
        #: owner -> when this member last saw it alive (monotonic)
        self._seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def _blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def _capabilities(self) -> dict[str, Any]:
        now = datetime.datetime.now(datetime.UTC)
        return {"owner": self.owner, "seen": now.isoformat()}

    async def join(self) -> None:
        """Join the cluster's group; call before taking work."""
        await self._blocking(self._coordination.join, self.group, self._capabilities())
        LOG.info("Joined cluster %s as %s", self.group, self.owner)

    async def tick(self) -> list[str]:
        """Look around once: heartbeat, then return every owner of work
        that has been silent for longer than the timeout."""
        await self._blocking(
            self._coordination.update, self.group, self._capabilities()
        )
        members = await self._blocking(self._coordination.members, self.group)
        now = time.monotonic()
        live = {caps.get("owner") for caps in members.values()}
        for owner in live:
            if isinstance(owner, str):
                self._seen[owner] = now
        silent = (
            await self._store.run(
                functools.partial(_owners_of_work, service=self.service)
            )
            - live
            - {self.owner}
        )
        dead = [o for o in sorted(silent) if now - self._last_seen(o) > self.timeout]
        for owner in dead:
            LOG.warning(
                "Cluster %s: %s has been silent for over %.0fs",
                self.group,
                owner,
                self.timeout,
            )
            self._seen.pop(owner, None)
        return dead

    def _last_seen(self, owner: str) -> float:
        # An owner never seen alive since this member started counts from
        # then: it may have died just before.
        return self._seen.setdefault(owner, self._started)

    async def view(self) -> dict[str, Any]:
        """Who is in the cluster, when each was last heard of, and who owns
        what: the journal's unfinished operations and the attachments."""
        work, served = await self._store.run(
            functools.partial(_work_by_owner, service=self.service)
        )
        found = await self._blocking(self._coordination.members, self.group)
        members: dict[str, Any] = {
            str(caps["owner"]): caps.get("seen")
            for caps in found.values()
            if isinstance(caps.get("owner"), str)
        }
        rows = []
        for owner in sorted(set(members) | set(work) | set(served)):
            counts = served.get(owner, {})
            rows.append(
                {
                    "owner": owner,
                    "alive": owner in members,
                    "last_heartbeat": members.get(owner),
                    "operations": work.get(owner, 0),
                    "attachments": counts.get("attachments", 0),
                    "lost_attachments": counts.get("lost", 0),
                }
            )
        return {
            "name": self.service,
            "member_timeout": self.timeout,
            "members": rows,
        }


def _owners_of_work(session: Any, service: str) -> set[str]:
    work, served = _work_by_owner(session, service)
    return set(work) | {owner for owner, c in served.items() if c["attachments"]}


def _work_by_owner(
    session: Any, service: str
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    return operations.owners(session, service), records.attachment_servers(
        session, service
    )
