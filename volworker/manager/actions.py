"""Every action of the wire contract and how the worker runs it: one table.

A :class:`~volworker.manager.operation.Command` changes a volume or
snapshot: it is journaled, runs in its volumes' turn and is finished or
undone after a crash. A :class:`~volworker.manager.queries.Query` reads.
Everything else (the intake, recovery, the fault suite's list of methods)
derives from :data:`ACTIONS`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from volworker.manager import (
    connections,
    group_snapshots,
    groups,
    queries,
    snapshots,
    transitions,
    volumes,
)
from volworker.manager.operation import Command
from volworker.manager.queries import Query
from volworker.manager.request import Request
from volworker.manager.runtime import Runtime

__all__ = ["ACTIONS", "Action", "commands", "volumes_touched"]

Action = Command | Query

ACTIONS: Mapping[str, Action] = {
    # Casts that change a volume.
    "create_volume": Command(
        "volume", "create", "error", volumes.create_volume, creates=True
    ),
    "delete_volume": Command(
        "volume", "delete", "error_deleting", volumes.delete_volume
    ),
    "extend_volume": Command(
        "volume", "extend", "error_extending", volumes.extend_volume
    ),
    "revert_to_snapshot": Command(
        "volume", "revert", "error", volumes.revert_to_snapshot
    ),
    "manage_existing": Command(
        "volume",
        "manage_existing",
        "error",
        volumes.manage_existing,
        undo=volumes.rollback_manage_existing,
        creates=True,
    ),
    "copy_volume_to_image": Command(
        "volume", "copy_to_image", None, volumes.copy_volume_to_image
    ),
    # Casts that change a snapshot.
    "create_snapshot": Command(
        "snapshot", "create", "error", snapshots.create_snapshot, creates=True
    ),
    "delete_snapshot": Command(
        "snapshot", "delete", "error_deleting", snapshots.delete_snapshot
    ),
    "manage_existing_snapshot": Command(
        "snapshot",
        "manage_existing",
        "error",
        snapshots.manage_existing_snapshot,
        undo=snapshots.rollback_manage_existing_snapshot,
        creates=True,
    ),
    # Calls that change a volume: journaled and ordered too, with a reply.
    "initialize_connection": Command(
        "volume",
        "attach",
        None,
        connections.initialize_connection,
        undo=connections.rollback_initialize_connection,
        reply=True,
    ),
    "terminate_connection": Command(
        "volume", "detach", None, connections.terminate_connection, reply=True
    ),
    # Casts on groups and group snapshots (contract 1.1).
    "create_group": Command(
        "group", "create", "error", groups.create_group, creates=True
    ),
    "update_group": Command("group", "update", "error", groups.update_group),
    "delete_group": Command("group", "delete", "error_deleting", groups.delete_group),
    "create_group_from_src": Command(
        "group",
        "create_from_src",
        "error",
        groups.create_group_from_src,
        creates=True,
    ),
    "create_group_snapshot": Command(
        "group_snapshot",
        "create",
        "error",
        group_snapshots.create_group_snapshot,
        creates=True,
    ),
    "delete_group_snapshot": Command(
        "group_snapshot",
        "delete",
        "error_deleting",
        group_snapshots.delete_group_snapshot,
    ),
    # Calls that read, and the capability fanout.
    "get_volume": queries.get_volume,
    "get_snapshot": queries.get_snapshot,
    "list_volumes": queries.list_volumes,
    "get_capabilities": queries.capabilities,
    "get_manageable_volumes": queries.manageable_volumes,
    "get_manageable_snapshots": queries.manageable_snapshots,
    "get_group": queries.get_group,
    "get_group_snapshot": queries.get_group_snapshot,
    "list_groups": queries.list_groups,
    "publish_service_capabilities": queries.publish_capabilities,
}


@functools.cache
def commands() -> dict[str, Command]:
    """The actions that are journaled."""
    return {name: a for name, a in ACTIONS.items() if isinstance(a, Command)}


async def volumes_touched(runtime: Runtime, request: Request) -> set[str]:
    """The volumes a command touches (see transitions.volumes_touched)."""
    if transitions.needs_lookup(request):
        return await runtime.db(
            functools.partial(
                transitions.volumes_touched, request=request, service=runtime.service
            )
        )
    return transitions.volumes_touched(None, request, runtime.service)
