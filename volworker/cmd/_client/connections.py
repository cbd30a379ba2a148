"""Attach and detach: initialize_connection and terminate_connection.

An NBD attachment secured with TLS-PSK comes with a key of its own. The
client writes it to ``DIR/keys.psk`` (0600, in a 0700 directory per
volume and connector host under ``--psk-dir``) and prints how to use it:
with ``--format uri`` a libnbd URI, with ``--format qemu`` the arguments
of qemu-io or qemu-img, by default the connection with the key's file in
place of the key. ``--format json`` prints the worker's reply as it is,
key included. Detaching removes the key file.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shlex
import socket
from typing import Any

from volworker import nbd_access
from volworker.cmd._client.errors import ClientError
from volworker.cmd._client.registry import Commands
from volworker.cmd._client.session import Session

__all__ = ["ATTACH_FORMATS", "PSK_DIR_ENV", "connector", "register"]

#: Formats only ``attach`` prints (besides the common table and json).
ATTACH_FORMATS = ("uri", "qemu")
PSK_DIR_ENV = "VOLWORKER_PSK_DIR"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def connector(args: argparse.Namespace) -> dict[str, Any]:
    """The contract's connector from the command line."""
    result: dict[str, Any] = {"host": args.connector_host}
    for key in ("initiator", "ip"):
        if getattr(args, key, None):
            result[key] = getattr(args, key)
    if getattr(args, "multipath", False):
        result["multipath"] = True
    return result


def _default_psk_dir() -> str:
    # The runtime directory is the user's own and gone at logout; keys
    # need not outlive the attachment's user.
    base = os.environ.get("XDG_RUNTIME_DIR") or os.path.expanduser("~/.cache")
    return os.path.join(base, "volworker", "psk")


def _key_dir(args: argparse.Namespace, volume_id: str, host: str | None) -> str:
    """Where the key of the volume's attachment to ``host`` goes."""
    base = args.psk_dir or os.environ.get(PSK_DIR_ENV) or _default_psk_dir()
    return os.path.join(base, f"{volume_id}@{_UNSAFE.sub('_', host or '')}")


def _without_key(info: dict[str, Any], access: nbd_access.Access) -> dict[str, Any]:
    """The connection as a person reads it: where the key is, not the key."""
    data = dict(info["data"])
    if "tls" in data:
        data["tls"] = {
            "psk_identity": data["tls"]["psk_identity"],
            "psk_file": access.psk_file,
        }
    return {**info, "data": data, "uri": access.uri()}


def _attach(session: Session, args: argparse.Namespace) -> int:
    record = session.get_volume(args.volume)
    info = session.api.initialize_connection(
        session.volume_arg(record), connector(args)
    )
    fmt = session.out.fmt
    if fmt == "json":
        session.out.record(info)
        return 0
    if info.get("driver_volume_type") != "nbd":
        if fmt in ATTACH_FORMATS:
            raise ClientError(
                f"--format {fmt} is for NBD attachments; this one is "
                f"{info.get('driver_volume_type')!r} (try --format json)"
            )
        session.out.record(info)
        return 0
    key_dir = _key_dir(args, record["id"], args.connector_host)
    try:
        access = nbd_access.prepare(info["data"], key_dir)
    except OSError as exc:
        raise ClientError(
            f"volume {record['id']} is attached, but its key could not be "
            f"written to {key_dir}: {exc}; detach it, or attach again with "
            "--psk-dir"
        ) from exc
    if fmt == "uri":
        session.out.line(access.uri())
    elif fmt == "qemu":
        session.out.line(shlex.join(access.qemu_args()))
    else:
        session.out.record(_without_key(info, access))
    return 0


def _detach(session: Session, args: argparse.Namespace) -> int:
    record = session.get_volume(args.volume)
    session.api.terminate_connection(
        session.volume_arg(record),
        None if args.all else connector(args),
        force=args.force or args.all,
    )
    if args.all:
        # The directory names the volume and host; any host goes here.
        pattern = glob.escape(_key_dir(args, record["id"], "")) + "*"
        key_dirs = glob.glob(pattern)
    else:
        key_dirs = [_key_dir(args, record["id"], args.connector_host)]
    for key_dir in key_dirs:
        nbd_access.forget(key_dir)
    session.out.record(session.get_volume(record["id"]))
    return 0


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--connector-host",
        default=socket.gethostname(),
        metavar="NAME",
        help="the host the volume is attached to (default: this host's name)",
    )
    parser.add_argument(
        "--psk-dir",
        metavar="DIR",
        help="where attachments' TLS keys are written, one 0700 directory "
        f"each (default: ${PSK_DIR_ENV}, else $XDG_RUNTIME_DIR/volworker/psk, "
        "else ~/.cache/volworker/psk)",
    )


def register(commands: Commands) -> None:
    parser = commands.add(
        "attach",
        _attach,
        "Export a volume to a host and print how to connect: --format uri "
        "(a libnbd URI), qemu (qemu-io/qemu-img arguments), json (the reply, "
        "key included).",
        formats=ATTACH_FORMATS,
    )
    parser.add_argument("volume", metavar="VOLUME_ID")
    _connection_options(parser)
    parser.add_argument("--initiator", help="the host's initiator name (iSCSI IQN)")
    parser.add_argument("--ip", help="the host's address on the storage network")
    parser.add_argument("--multipath", action="store_true")

    parser = commands.add(
        "detach", _detach, "End a host's connection to a volume; forget its key."
    )
    parser.add_argument("volume", metavar="VOLUME_ID")
    _connection_options(parser)
    parser.add_argument(
        "--force", action="store_true", help="detach even if the backend objects"
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="detach every host (implies --force)",
    )
