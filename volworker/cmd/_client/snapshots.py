"""Snapshot subcommands: snapshot (create), snapshot-delete, snapshot-show."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from volworker.cmd._client import wait
from volworker.cmd._client.argtypes import uuid_arg
from volworker.cmd._client.errors import ClientError
from volworker.cmd._client.registry import Commands
from volworker.cmd._client.session import Session

__all__ = ["register"]


def new_snapshot_id(session: Session, given: str | None) -> str:
    """An id for a new snapshot; ClientError if the given one is taken."""
    if given is None:
        return str(uuid.uuid4())
    existing = session.find_snapshot(given)
    if existing is not None:
        raise ClientError(f"snapshot {given} exists already ({existing['status']})")
    return given


def _create(session: Session, args: argparse.Namespace) -> int:
    volume = session.get_volume(args.volume)
    snapshot: dict[str, Any] = {
        "id": new_snapshot_id(session, args.id),
        "volume_id": volume["id"],
    }
    if args.name is not None:
        snapshot["name"] = args.name
    session.api.create_snapshot(session.server, snapshot)
    return wait.outcome(
        session, args, "snapshot", snapshot["id"], wait.settled, "to be created"
    )


def _delete(session: Session, args: argparse.Namespace) -> int:
    record = session.get_snapshot(args.snapshot)
    session.api.delete_snapshot(
        session.server,
        {"id": record["id"], "volume_id": record["volume_id"]},
        unmanage_only=args.unmanage,
    )
    return wait.outcome(
        session, args, "snapshot", record["id"], wait.gone, "to be deleted"
    )


def _show(session: Session, args: argparse.Namespace) -> int:
    session.out.record(session.get_snapshot(args.snapshot))
    return 0


def register(commands: Commands) -> None:
    parser = commands.add("snapshot", _create, "Create a snapshot of a volume.")
    parser.add_argument("volume", metavar="VOLUME_ID")
    parser.add_argument("--name")
    parser.add_argument(
        "--id", type=uuid_arg, help="the new snapshot's UUID (default: a new one)"
    )
    wait.add_options(parser)

    parser = commands.add("snapshot-delete", _delete, "Delete a snapshot.")
    parser.add_argument("snapshot", metavar="SNAPSHOT_ID")
    parser.add_argument(
        "--unmanage",
        action="store_true",
        help="only forget the snapshot; leave its data on the backend",
    )
    wait.add_options(parser)

    parser = commands.add("snapshot-show", _show, "Show a snapshot.")
    parser.add_argument("snapshot", metavar="SNAPSHOT_ID")
