"""Attach and detach: initialize_connection and terminate_connection."""

from __future__ import annotations

import argparse
import socket
from typing import Any

from volworker.cmd._client.registry import Commands
from volworker.cmd._client.session import Session

__all__ = ["connector", "register"]


def connector(args: argparse.Namespace) -> dict[str, Any]:
    """The contract's connector from the command line."""
    result: dict[str, Any] = {"host": args.connector_host}
    for key in ("initiator", "ip"):
        if getattr(args, key, None):
            result[key] = getattr(args, key)
    if getattr(args, "multipath", False):
        result["multipath"] = True
    return result


def _attach(session: Session, args: argparse.Namespace) -> int:
    record = session.get_volume(args.volume)
    info = session.api.initialize_connection(
        session.volume_arg(record), connector(args)
    )
    session.out.record(info)
    return 0


def _detach(session: Session, args: argparse.Namespace) -> int:
    record = session.get_volume(args.volume)
    session.api.terminate_connection(
        session.volume_arg(record),
        None if args.all else connector(args),
        force=args.force or args.all,
    )
    session.out.record(session.get_volume(record["id"]))
    return 0


def _connector_host(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--connector-host",
        default=socket.gethostname(),
        metavar="NAME",
        help="the host the volume is attached to (default: this host's name)",
    )


def register(commands: Commands) -> None:
    parser = commands.add(
        "attach", _attach, "Export a volume to a host and print how to connect."
    )
    parser.add_argument("volume", metavar="VOLUME_ID")
    _connector_host(parser)
    parser.add_argument("--initiator", help="the host's initiator name (iSCSI IQN)")
    parser.add_argument("--ip", help="the host's address on the storage network")
    parser.add_argument("--multipath", action="store_true")

    parser = commands.add("detach", _detach, "End a host's connection to a volume.")
    parser.add_argument("volume", metavar="VOLUME_ID")
    _connector_host(parser)
    parser.add_argument(
        "--force", action="store_true", help="detach even if the backend objects"
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="detach every host (implies --force)",
    )
