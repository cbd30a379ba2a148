"""The cluster subcommand: who is in a cluster and who owns what.

    volworker-client cluster [--host <cluster>@<backend>]

Asks one member (any member answers on the cluster's server) for
``get_capabilities`` and prints its ``cluster`` part: one row per worker
incarnation that is alive or still owns work, with its last heartbeat, the
journal's unfinished operations it owns and the attachments it serves.
"""

from __future__ import annotations

import argparse
from typing import Any

from volworker.cmd._client.errors import ClientError
from volworker.cmd._client.registry import Commands
from volworker.cmd._client.session import Session

__all__ = ["COLUMNS", "register"]

COLUMNS = ("owner", "alive", "last_heartbeat", "operations", "attachments", "lost")


def _row(member: dict[str, Any]) -> dict[str, Any]:
    return {
        "owner": member["owner"],
        "alive": "yes" if member["alive"] else "NO",
        "last_heartbeat": member.get("last_heartbeat") or "-",
        "operations": member["operations"],
        "attachments": member["attachments"],
        "lost": member["lost_attachments"],
    }


def _cluster(session: Session, args: argparse.Namespace) -> int:
    found = session.api.get_capabilities(session.server)
    cluster = found.get("cluster")
    if not isinstance(cluster, dict):
        raise ClientError(
            f"{session.server} is not a member of a cluster (no cluster in its "
            "capabilities)"
        )
    if session.out.fmt == "json":
        session.out.record(cluster)
        return 0
    timeout = f"{cluster['member_timeout']:g}s"
    session.out.record({"cluster": cluster["name"], "member_timeout": timeout})
    session.out.table([_row(m) for m in cluster["members"]], COLUMNS)
    return 0


def register(commands: Commands) -> None:
    commands.add(
        "cluster",
        _cluster,
        "Show the members of a cluster, their heartbeats and who owns what.",
    )
