"""Snapshot subcommands: snapshot (create), snapshot-delete, snapshot-show."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from volworker.cmd._client import wait
from volworker.cmd._client.arguments import add_unmanage, uuid_arg
from volworker.cmd._client.errors import ClientError
from volworker.cmd._client.registry import Commands
from volworker.cmd._client.session import Session

__all__ = ["new_snapshot", "register"]


def _new_snapshot_id(session: Session, given: str | None) -> str:
    """An id for a new snapshot; ClientError if the given one is taken."""
    if given is None:
        return str(uuid.uuid4())
    existing = session.find_snapshot(given)
    if existing is not None:
        raise ClientError(f"snapshot {given} exists already ({existing['status']})")
    return given


def new_snapshot(
    session: Session, args: argparse.Namespace, volume_id: str
) -> dict[str, Any]:
    """A new snapshot's object from ``--id`` and ``--name``; the volume must
    exist."""
    volume = session.get_volume(volume_id)
    snapshot: dict[str, Any] = {
        "id": _new_snapshot_id(session, args.id),
        "volume_id": volume["id"],
    }
    if args.name is not None:
        snapshot["name"] = args.name
    return snapshot


def _create(session: Session, args: argparse.Namespace) -> int:
    snapshot = new_snapshot(session, args, args.volume)
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
        session, args, "snapshot", record["id"], wait.gone(record), "to be deleted"
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
    add_unmanage(parser, "snapshot")
    wait.add_options(parser)

    parser = commands.add("snapshot-show", _show, "Show a snapshot.")
    parser.add_argument("snapshot", metavar="SNAPSHOT_ID")
