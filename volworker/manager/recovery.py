"""What a worker left unfinished, taken up again: at start its own earlier
incarnations' work, in a cluster also a dead member's; and the exports to
restore.

Every operation the journal holds as ``accepted`` or ``running`` is first
re-owned, in one statement, by this incarnation (so when two workers reach
for the same work, one gets it), then either done again (most can be:
creating, extending or deleting twice ends the same), undone (an attach
whose caller has given up, a manage that may have half adopted its
object), or, for a call that never started, closed: its caller stopped
waiting long ago. The manager queues the work in journal order, so
per-volume order holds across the restart or the takeover.
"""

from __future__ import annotations

import asyncio
import datetime
import enum
import functools
import logging
from dataclasses import dataclass
from typing import Any

from volworker import exception
from volworker.context import RequestContext
from volworker.manager import transitions
from volworker.manager.actions import commands
from volworker.manager.operation import Command
from volworker.manager.request import Request
from volworker.manager.runtime import Runtime
from volworker.state import operations, records

__all__ = [
    "Fate",
    "Resumed",
    "exportable",
    "fate",
    "purge_journal",
    "restore_export",
    "take_over",
    "take_over_attachments",
    "unfinished",
]

LOG = logging.getLogger(__name__)


class Fate(enum.Enum):
    """What recovery does with an unfinished operation."""

    REDO = "redoing"
    UNDO = "rolling back"
    CLOSE = "closing"


def fate(state: str, command: Command) -> Fate:
    """Redo, undo or close an operation left ``state`` by a restart."""
    if command.reply and state == "accepted":
        return Fate.CLOSE
    if state == "running" and command.undo is not None:
        return Fate.UNDO
    return Fate.REDO


@dataclass(frozen=True)
class Resumed:
    """An unfinished operation to run again, or to undo."""

    seq: int
    request: Request
    command: Command
    fate: Fate
    #: the volumes it touches, as journaled (empty for older entries)
    volumes: frozenset[str]


async def unfinished(runtime: Runtime, member: str | None) -> list[Resumed]:
    """Re-own and return what this worker's earlier incarnations left
    unfinished: those of ``member`` (``<host>@<backend>``) in a cluster,
    any of the service's when the backend is served by this process only."""
    previous = operations.incarnations_of(member)
    return await _reown(runtime, previous)


async def take_over(runtime: Runtime, owner: str) -> list[Resumed]:
    """Re-own and return a dead member's unfinished work (nothing when
    another member took it first)."""
    return await _reown(runtime, operations.owned_by(owner))


async def _reown(runtime: Runtime, previous: Any) -> list[Resumed]:
    entries = await runtime.db(
        functools.partial(
            operations.reown,
            service=runtime.service,
            owner=runtime.owner,
            previous=previous,
        )
    )
    resumed = []
    for entry in entries:
        command = commands()[entry["action"]]
        chosen = fate(entry["state"], command)
        if chosen is Fate.CLOSE:
            await runtime.db(
                functools.partial(
                    transitions.abandon, owner=runtime.owner, seq=entry["seq"]
                )
            )
            LOG.info(
                "Closed %s (journal %d): it never started and its caller has given up",
                entry["action"],
                entry["seq"],
            )
            continue
        context = RequestContext(
            request_id=entry["request_id"] or RequestContext().request_id
        )
        request = Request(entry["action"], entry["args"], context)
        volumes = frozenset(entry["volumes"])
        resumed.append(Resumed(entry["seq"], request, command, chosen, volumes))
        LOG.info(
            "Recovering %s %s (journal %d, %s)",
            entry["action"],
            entry["resource_id"],
            entry["seq"],
            chosen.value,
        )
    return resumed


async def exportable(runtime: Runtime, member: str | None) -> list[str]:
    """Re-own the attachments earlier incarnations served, and return the
    volumes whose exports the driver is to restore: in a cluster the volumes
    of those attachments; otherwise every available or in-use volume
    (``ensure_export`` also prunes what is stale)."""
    previous = operations.incarnations_of(member, records.ATTACHMENT_SERVER)
    reowned = await runtime.db(
        functools.partial(
            records.reown_attachments,
            service=runtime.service,
            owner=runtime.owner,
            previous=previous,
        )
    )
    if member is not None:
        return sorted({a["volume_id"] for a in reowned if not a["lost"]})
    return await runtime.db(
        functools.partial(
            records.volume_ids,
            service=runtime.service,
            statuses=("available", "in-use"),
        )
    )


async def take_over_attachments(runtime: Runtime, owner: str) -> list[dict[str, Any]]:
    """Re-own the attachments a dead member served; return them."""
    return await runtime.db(
        functools.partial(
            records.reown_attachments,
            service=runtime.service,
            owner=runtime.owner,
            previous=operations.owned_by(owner, records.ATTACHMENT_SERVER),
        )
    )


async def restore_export(runtime: Runtime, volume_id: str) -> None:
    """Have the driver restore (and prune) one volume's exports; call in the
    volume's turn. Failures are logged: a volume that cannot be exported
    again is no reason to stop serving the others."""
    try:
        _, volume = await runtime.db(
            functools.partial(
                transitions.load_volume, service=runtime.service, volume_id=volume_id
            )
        )
        await runtime.call(
            "recovery", runtime.driver.ensure_export, RequestContext.admin(), volume
        )
    except (exception.VolumeNotFound, exception.SnapshotNotFound) as exc:
        LOG.debug("No exports to restore for volume %s: %s", volume_id, exc)
    except exception.VolworkerError as exc:
        LOG.warning("Could not restore the exports of volume %s: %s", volume_id, exc)


#: Seconds between two purges of the journal's finished entries.
PURGE_INTERVAL = 6 * 3600


async def purge_journal(runtime: Runtime, retention: datetime.timedelta) -> None:
    """Drop finished journal entries past their retention, now and then,
    for as long as the worker runs."""
    while True:
        cutoff = datetime.datetime.now(datetime.UTC) - retention
        try:
            purged = await runtime.db(
                functools.partial(
                    operations.purge, service=runtime.service, older_than=cutoff
                )
            )
        except exception.VolworkerError as exc:
            LOG.warning("Could not purge the journal: %s", exc)
        else:
            if purged:
                LOG.info("Purged %d finished journal entries", purged)
        await asyncio.sleep(PURGE_INTERVAL)
