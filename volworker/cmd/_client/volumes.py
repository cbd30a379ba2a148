"""Volume subcommands: create, delete, extend, revert, show, list."""

from __future__ import annotations

import argparse
from typing import Any

from volworker.cmd._client import wait
from volworker.cmd._client.arguments import add_unmanage, size_arg, uuid_arg
from volworker.cmd._client.errors import ClientError
from volworker.cmd._client.registry import Commands
from volworker.cmd._client.session import Session

__all__ = ["LIST_COLUMNS", "new_volume", "register"]

LIST_COLUMNS = ("id", "name", "status", "size", "host")
#: The most a worker returns in one page of list_volumes.
PAGE = 1000


def _source(session: Session, args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """The source fields of a new volume and the size it needs at least."""
    if args.from_snapshot:
        snap = session.get_snapshot(args.from_snapshot)
        return {"snapshot_id": snap["id"]}, int(snap["size"])
    if args.from_volume:
        source = session.get_volume(args.from_volume)
        return {"source_volid": source["id"]}, int(source["size"])
    if args.from_image:
        return {"image_id": args.from_image}, 1
    return {}, 1


def new_volume(session: Session, args: argparse.Namespace, size: int) -> dict[str, Any]:
    """A new volume's object from ``--id``, ``--pool`` and ``--name``."""
    volume: dict[str, Any] = {
        "id": session.new_volume_id(args.id),
        "size": size,
        "host": session.placement(args.pool),
    }
    if args.name is not None:
        volume["name"] = args.name
    return volume


def _create(session: Session, args: argparse.Namespace) -> int:
    source, least = _source(session, args)
    volume = {**new_volume(session, args, args.size or least), **source}
    session.api.create_volume(volume)
    return wait.outcome(
        session, args, "volume", volume["id"], wait.settled, "to be created"
    )


def _delete(session: Session, args: argparse.Namespace) -> int:
    record = session.get_volume(args.volume)
    if record["status"] == "in-use":
        raise ClientError(f"volume {record['id']} is attached (in-use): detach it")
    session.api.delete_volume(session.volume_arg(record), unmanage_only=args.unmanage)
    return wait.outcome(
        session, args, "volume", record["id"], wait.gone(record), "to be deleted"
    )


def _extend(session: Session, args: argparse.Namespace) -> int:
    record = session.get_volume(args.volume)
    if args.size <= record["size"]:
        raise ClientError(
            f"the new size {args.size} GiB must exceed the volume's "
            f"{record['size']} GiB"
        )
    session.api.extend_volume(session.volume_arg(record), args.size)
    return wait.outcome(
        session,
        args,
        "volume",
        record["id"],
        wait.changed(record),
        f"to grow to {args.size} GiB",
    )


def _revert(session: Session, args: argparse.Namespace) -> int:
    record = session.get_volume(args.volume)
    snapshot = session.get_snapshot(args.snapshot)
    if snapshot["volume_id"] != record["id"]:
        raise ClientError(
            f"snapshot {snapshot['id']} is of volume {snapshot['volume_id']}, "
            f"not of {record['id']}"
        )
    session.api.revert_to_snapshot(
        session.volume_arg(record),
        {"id": snapshot["id"], "volume_id": record["id"]},
    )
    return wait.outcome(
        session, args, "volume", record["id"], wait.changed(record), "to be reverted"
    )


def _show(session: Session, args: argparse.Namespace) -> int:
    session.out.record(session.get_volume(args.volume))
    return 0


def _list(session: Session, args: argparse.Namespace) -> int:
    volumes: list[dict[str, Any]] = []
    marker = args.marker
    while args.limit is None or len(volumes) < args.limit:
        want = PAGE if args.limit is None else min(PAGE, args.limit - len(volumes))
        page = session.api.list_volumes(session.server, marker=marker, limit=want)
        volumes.extend(page)
        if len(page) < want:
            break
        marker = page[-1]["id"]
    session.out.table(volumes, LIST_COLUMNS)
    return 0


def _register_changes(commands: Commands) -> None:
    parser = commands.add("delete", _delete, "Delete a volume.")
    parser.add_argument("volume", metavar="VOLUME_ID")
    add_unmanage(parser, "volume")
    wait.add_options(parser)

    parser = commands.add("extend", _extend, "Grow a volume.")
    parser.add_argument("volume", metavar="VOLUME_ID")
    parser.add_argument("size", type=size_arg, metavar="NEW_SIZE", help="in GiB")
    wait.add_options(parser)

    parser = commands.add(
        "revert", _revert, "Revert a volume to the data of one of its snapshots."
    )
    parser.add_argument("volume", metavar="VOLUME_ID")
    parser.add_argument("snapshot", metavar="SNAPSHOT_ID")
    wait.add_options(parser)


def register(commands: Commands) -> None:
    parser = commands.add("create", _create, "Create a volume.")
    parser.add_argument(
        "--size", type=size_arg, metavar="GIB", help="default: 1, or the source's"
    )
    parser.add_argument("--name")
    parser.add_argument("--pool", help="the backend's pool (default: its first)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--from-snapshot", metavar="SNAPSHOT_ID")
    source.add_argument("--from-volume", metavar="VOLUME_ID")
    source.add_argument("--from-image", metavar="IMAGE_ID")
    parser.add_argument(
        "--id", type=uuid_arg, help="the new volume's UUID (default: a new one)"
    )
    wait.add_options(parser)

    _register_changes(commands)

    parser = commands.add("show", _show, "Show a volume.")
    parser.add_argument("volume", metavar="VOLUME_ID")

    parser = commands.add("list", _list, "List the server's volumes.")
    parser.add_argument("--limit", type=int, metavar="N", help="show at most N")
    parser.add_argument("--marker", metavar="VOLUME_ID", help="start after this one")
