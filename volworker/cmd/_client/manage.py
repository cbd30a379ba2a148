"""Objects on the backend the worker does not manage yet: list and adopt them."""

from __future__ import annotations

import argparse

from volworker.cmd._client import wait
from volworker.cmd._client.arguments import uuid_arg
from volworker.cmd._client.registry import Commands
from volworker.cmd._client.session import Session
from volworker.cmd._client.snapshots import new_snapshot
from volworker.cmd._client.volumes import new_volume

__all__ = ["register"]

COLUMNS = (
    "reference",
    "size",
    "safe_to_manage",
    "reason_not_safe",
    "cinder_id",
    "extra_info",
)
SNAPSHOT_COLUMNS = (*COLUMNS, "source_reference")
SORT_DIRS = ("asc", "desc")


def sort_arg(value: str) -> tuple[str, str]:
    """``KEY[:asc|desc]``."""
    key, _, direction = value.partition(":")
    direction = direction or "asc"
    if not key or direction not in SORT_DIRS:
        raise argparse.ArgumentTypeError(f"{value!r} is not KEY[:asc|desc]")
    return key, direction


def _manageable(session: Session, args: argparse.Namespace) -> int:
    listing = (
        session.api.get_manageable_snapshots
        if args.snapshots
        else session.api.get_manageable_volumes
    )
    sort = args.sort or []
    entries = listing(
        session.server,
        marker=args.marker,
        limit=args.limit,
        offset=args.offset,
        sort_keys=[key for key, _ in sort],
        sort_dirs=[direction for _, direction in sort],
    )
    session.out.table(entries, SNAPSHOT_COLUMNS if args.snapshots else COLUMNS)
    return 0


def _reference(args: argparse.Namespace) -> dict[str, str]:
    if args.source_id is not None:
        return {"source-id": args.source_id}
    return {"source-name": args.source_name}


def _manage_snapshot(session: Session, args: argparse.Namespace) -> int:
    snapshot = new_snapshot(session, args, args.snapshot_of)
    session.api.manage_existing_snapshot(session.server, snapshot, _reference(args))
    return wait.outcome(
        session, args, "snapshot", snapshot["id"], wait.settled, "to be managed"
    )


def _manage(session: Session, args: argparse.Namespace) -> int:
    if args.snapshot_of:
        return _manage_snapshot(session, args)
    # The contract's volume needs a size; the worker replaces it with
    # the size of what it adopts.
    volume = new_volume(session, args, size=1)
    session.api.manage_existing(volume, _reference(args))
    return wait.outcome(
        session, args, "volume", volume["id"], wait.settled, "to be managed"
    )


def register(commands: Commands) -> None:
    parser = commands.add(
        "manageable", _manageable, "List what the backend holds that could be managed."
    )
    parser.add_argument(
        "--snapshots", action="store_true", help="snapshots, not volumes"
    )
    parser.add_argument("--limit", type=int, metavar="N")
    parser.add_argument("--offset", type=int, default=0, metavar="N")
    parser.add_argument("--marker")
    parser.add_argument(
        "--sort",
        type=sort_arg,
        action="append",
        metavar="KEY[:DIR]",
        help="sort by KEY (size, reference), asc or desc; repeatable",
    )

    parser = commands.add(
        "manage", _manage, "Adopt a volume (or snapshot) that is on the backend."
    )
    ref = parser.add_mutually_exclusive_group(required=True)
    ref.add_argument("--source-name", metavar="NAME", help="the backend's name for it")
    ref.add_argument("--source-id", metavar="ID", help="the backend's id for it")
    parser.add_argument("--name")
    parser.add_argument("--pool", help="the pool it is in (volumes)")
    parser.add_argument(
        "--snapshot-of",
        metavar="VOLUME_ID",
        help="adopt a snapshot of this volume instead of a volume",
    )
    parser.add_argument("--id", type=uuid_arg, help="its UUID (default: a new one)")
    wait.add_options(parser)
