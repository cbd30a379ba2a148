"""Group subcommands (contract 1.1).

    volworker-client group create [--name N] [--consistent] [--volume ID ...]
    volworker-client group show|delete GROUP_ID
    volworker-client group list
    volworker-client group snapshot GROUP_ID [--name N]
    volworker-client group snapshot-delete GROUP_SNAPSHOT_ID
    volworker-client group create-from-src (--group-snapshot ID | --source-group ID)

Casts print the new id at once, or with ``--wait`` the final record.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from volworker.cmd._client import wait
from volworker.cmd._client.arguments import uuid_arg
from volworker.cmd._client.registry import Commands
from volworker.cmd._client.session import Session

__all__ = ["register"]

COLUMNS = ("id", "name", "status", "volumes")
CONSISTENT = {"consistent_group_snapshot_enabled": "<is> True"}


def _group_arg(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["id"], "host": record["host"]}


def _get(session: Session, group_id: str) -> dict[str, Any]:
    return session.api.get_group(session.server, group_id)


def _create(session: Session, args: argparse.Namespace) -> int:
    group: dict[str, Any] = {"id": str(uuid.uuid4()), "host": session.server}
    if args.name is not None:
        group["name"] = args.name
    if args.consistent:
        group["group_type"] = {"name": "consistent", "group_specs": CONSISTENT}
    session.api.create_group(group)
    if args.volume:
        # Queued behind the create: the members join once the group exists.
        session.api.update_group(group, add_volumes=args.volume)
    return wait.outcome(
        session, args, "group", group["id"], _settled_members(args), "to be created"
    )


def _settled_members(args: argparse.Namespace) -> Any:
    wanted = set(args.volume or ())

    def done(record: wait.Record) -> bool:
        if wait.failed(record):
            return True
        if not wait.settled(record) or record is None:
            return False
        return wanted <= set(record.get("volume_ids", ()))

    return done


def _show(session: Session, args: argparse.Namespace) -> int:
    session.out.record(_get(session, args.group))
    return 0


def _list(session: Session, args: argparse.Namespace) -> int:
    rows = [
        {**g, "volumes": len(g.get("volume_ids", ()))}
        for g in session.api.list_groups(session.server)
    ]
    session.out.table(rows, COLUMNS)
    return 0


def _delete(session: Session, args: argparse.Namespace) -> int:
    record = _get(session, args.group)
    session.api.delete_group(_group_arg(record), delete_volumes=args.delete_volumes)
    return wait.outcome(
        session, args, "group", record["id"], wait.gone(record), "to be deleted"
    )


def _snapshot(session: Session, args: argparse.Namespace) -> int:
    record = _get(session, args.group)
    gsnap: dict[str, Any] = {"id": str(uuid.uuid4()), "group_id": record["id"]}
    if args.name is not None:
        gsnap["name"] = args.name
    session.api.create_group_snapshot(session.server, gsnap)
    return wait.outcome(
        session, args, "group snapshot", gsnap["id"], wait.settled, "to be taken"
    )


def _snapshot_delete(session: Session, args: argparse.Namespace) -> int:
    record = session.api.get_group_snapshot(session.server, args.group_snapshot)
    session.api.delete_group_snapshot(
        session.server, {"id": record["id"], "group_id": record["group_id"]}
    )
    return wait.outcome(
        session,
        args,
        "group snapshot",
        record["id"],
        wait.gone(record),
        "to be deleted",
    )


def _members_from(
    session: Session, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The new group's volumes (one per source member) and the source."""
    if args.group_snapshot:
        source = session.api.get_group_snapshot(session.server, args.group_snapshot)
        snaps = [session.get_snapshot(s) for s in source["snapshot_ids"]]
        volumes = [
            {
                "id": str(uuid.uuid4()),
                "size": s["size"],
                "host": session.server,
                "snapshot_id": s["id"],
            }
            for s in snaps
        ]
        return volumes, {"group_snapshot_id": source["id"]}
    group = _get(session, args.source_group)
    members = [session.get_volume(v) for v in group["volume_ids"]]
    volumes = [
        {
            "id": str(uuid.uuid4()),
            "size": v["size"],
            "host": session.server,
            "source_volid": v["id"],
        }
        for v in members
    ]
    return volumes, {"source_group_id": group["id"]}


def _create_from_src(session: Session, args: argparse.Namespace) -> int:
    volumes, source = _members_from(session, args)
    group: dict[str, Any] = {"id": str(uuid.uuid4()), "host": session.server}
    if args.name is not None:
        group["name"] = args.name
    session.api.create_group_from_src(group, volumes, **source)
    return wait.outcome(
        session, args, "group", group["id"], wait.settled, "to be created"
    )


def register(commands: Commands) -> None:
    commands = commands.nested("group", "Groups of volumes (contract 1.1).")
    parser = commands.add("create", _create, "Create a group of volumes.")
    parser.add_argument("--name")
    parser.add_argument(
        "--consistent",
        action="store_true",
        help="snapshots of the group must take every member at one point in time",
    )
    parser.add_argument(
        "--volume", type=uuid_arg, action="append", help="a volume to put in it"
    )
    wait.add_options(parser)

    parser = commands.add("show", _show, "Show a group and its volumes.")
    parser.add_argument("group", metavar="GROUP_ID")

    commands.add("list", _list, "List the groups.")

    parser = commands.add("delete", _delete, "Delete a group.")
    parser.add_argument("group", metavar="GROUP_ID")
    parser.add_argument(
        "--delete-volumes",
        action="store_true",
        help="delete its volumes with it (else a group with volumes is refused)",
    )
    wait.add_options(parser)

    parser = commands.add("snapshot", _snapshot, "Snapshot every member.")
    parser.add_argument("group", metavar="GROUP_ID")
    parser.add_argument("--name")
    wait.add_options(parser)

    parser = commands.add(
        "snapshot-delete", _snapshot_delete, "Delete a group snapshot."
    )
    parser.add_argument("group_snapshot", metavar="GROUP_SNAPSHOT_ID")
    wait.add_options(parser)

    parser = commands.add(
        "create-from-src",
        _create_from_src,
        "Create a group from a group snapshot or another group.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--group-snapshot", type=uuid_arg)
    source.add_argument("--source-group", type=uuid_arg)
    parser.add_argument("--name")
    wait.add_options(parser)
