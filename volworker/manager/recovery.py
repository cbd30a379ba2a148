"""At start: what the journal left unfinished, and the exports to restore.

Every operation the journal holds as ``accepted`` or ``running`` is either
done again (most can be: creating, extending or deleting twice ends the
same), undone (an attach whose caller has given up, a manage that may have
half adopted its object), or, for a call that never started, closed: its
caller stopped waiting long ago. The manager queues the work in journal
order ahead of anything new, so per-volume order holds across the restart.
"""

from __future__ import annotations

import enum
import functools
import logging
from dataclasses import dataclass

from volworker import exception
from volworker.context import RequestContext
from volworker.manager import transitions
from volworker.manager.actions import commands
from volworker.manager.operation import Command
from volworker.manager.request import Request
from volworker.manager.runtime import Runtime
from volworker.state import operations, records

__all__ = ["Fate", "Resumed", "exportable", "fate", "restore_export", "unfinished"]

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


async def unfinished(runtime: Runtime) -> list[Resumed]:
    """The service's unfinished operations in journal order, each with its
    fate; the ones to close are closed here and not returned."""
    entries = await runtime.db(
        functools.partial(operations.unfinished, service=runtime.service)
    )
    resumed = []
    for entry in entries:
        command = commands()[entry["action"]]
        chosen = fate(entry["state"], command)
        if chosen is Fate.CLOSE:
            await runtime.db(functools.partial(transitions.abandon, seq=entry["seq"]))
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
        resumed.append(Resumed(entry["seq"], request, command, chosen))
        LOG.info(
            "Recovering %s %s (journal %d, %s)",
            entry["action"],
            entry["resource_id"],
            entry["seq"],
            chosen.value,
        )
    return resumed


async def exportable(runtime: Runtime) -> list[str]:
    """The volumes whose exports the driver may need to restore."""
    return await runtime.db(
        functools.partial(
            records.volume_ids,
            service=runtime.service,
            statuses=("available", "in-use"),
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
