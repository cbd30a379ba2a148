"""Arguments several subcommands take, and argparse types for the values the
contract checks: UUIDs, sizes, servers."""

from __future__ import annotations

import argparse
import uuid

from volworker.cmd._client.session import check_server

__all__ = ["add_unmanage", "seconds_arg", "server_arg", "size_arg", "uuid_arg"]


def uuid_arg(value: str) -> str:
    """A UUID in its canonical form."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a UUID") from None


def size_arg(value: str) -> int:
    """A size in GiB, at least 1."""
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a size in GiB (1 or more)")
    return size


def seconds_arg(value: str) -> float:
    """A duration in seconds, more than 0."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds > 0")
    return seconds


def server_arg(value: str) -> str:
    """``HOST@BACKEND``."""
    try:
        return check_server(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_unmanage(parser: argparse.ArgumentParser, kind: str) -> None:
    parser.add_argument(
        "--unmanage",
        action="store_true",
        help=f"only forget the {kind}; leave its data on the backend",
    )
