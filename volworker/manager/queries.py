"""Calls that only read: records, listings, capabilities, manageable objects.

A query's store work is submitted in arrival order, so it sees every request
that arrived before it (a ``get_volume`` right after a ``create_volume`` cast
finds the volume ``creating``).
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from volworker import exception
from volworker.manager import journal
from volworker.manager.request import Request
from volworker.objects import Snapshot, Volume
from volworker.state import api

if TYPE_CHECKING:
    from volworker.manager.core import Manager

__all__ = ["QUERIES", "answer", "answer_from", "record_work"]


def _managed(session: Session, service: str) -> tuple[list[Volume], list[Snapshot]]:
    """Every volume and snapshot of the service, as driver objects."""
    volumes: list[Volume] = []
    snapshots: list[Snapshot] = []
    for record in api.list_volumes(session, service):
        _, volume = journal.load_volume(session, service, record["id"])
        volumes.append(volume)
        for snap in api.list_snapshots(session, volume.id):
            snapshots.append(journal.load_snapshot(session, service, snap["id"])[1])
    return volumes, snapshots


async def _manageable(manager: Manager, request: Request, kind: str) -> Any:
    volumes, snapshots = await manager.store.run(
        functools.partial(_managed, service=manager.service)
    )
    args = request.args
    managed: list[Any] = volumes if kind == "volumes" else snapshots
    return await manager.call_driver(
        request.context.request_id,
        f"get_manageable_{kind}",
        managed,
        args["marker"],
        args["limit"],
        args["offset"],
        args["sort_keys"],
        args["sort_dirs"],
    )


async def _capabilities(manager: Manager, request: Request) -> Any:
    """The latest published capabilities; with ``discover`` fresh ones."""
    if request.args["discover"] and manager.discover_stats is not None:
        return await manager.discover_stats()
    if request.args["discover"] or not manager.stats:
        manager.stats = await manager.call_driver(
            request.context.request_id, "get_volume_stats", True
        )
    return manager.stats


def _volume_record(session: Session, service: str, volume_id: str) -> dict[str, Any]:
    return dict(journal.volume_row(session, service, volume_id).to_dict())


def _snapshot_record(
    session: Session, service: str, snapshot_id: str
) -> dict[str, Any]:
    return dict(journal.snapshot_row(session, service, snapshot_id).to_dict())


def record_work(service: str, request: Request) -> Callable[[Session], Any] | None:
    """The store work that answers a query about records, or None for a
    query that needs more than the store."""
    args = request.args
    if request.action == "get_volume":
        return functools.partial(
            _volume_record, service=service, volume_id=args["volume_id"]
        )
    if request.action == "get_snapshot":
        return functools.partial(
            _snapshot_record, service=service, snapshot_id=args["snapshot_id"]
        )
    if request.action == "list_volumes":
        return functools.partial(
            api.list_volumes,
            service=service,
            marker=args["marker"],
            limit=args["limit"],
        )
    return None


async def _run(manager: Manager, request: Request) -> Any:
    work = record_work(manager.service, request)
    if work is not None:
        return await manager.store.run(work)
    if request.action == "get_capabilities":
        return await _capabilities(manager, request)
    if request.action == "get_manageable_volumes":
        return await _manageable(manager, request, "volumes")
    return await _manageable(manager, request, "snapshots")


QUERIES = frozenset(
    {
        "get_volume",
        "get_snapshot",
        "list_volumes",
        "get_capabilities",
        "get_manageable_volumes",
        "get_manageable_snapshots",
    }
)


def answer_from(request: Request, done: concurrent.futures.Future[Any]) -> None:
    """Reply with the outcome of a record query (on the store's thread)."""
    assert request.respond is not None
    try:
        result = done.result()
    except Exception as exc:
        request.respond(None, exc)
    else:
        request.respond(result, None)


async def answer(manager: Manager, request: Request) -> None:
    """Run a query and send its reply (or its error) to the caller."""
    assert request.respond is not None
    try:
        result = await _run(manager, request)
    except exception.VolworkerError as exc:
        request.respond(None, exc)
    except Exception as exc:
        request.respond(None, exception.VolumeBackendAPIException(data=str(exc)))
    else:
        request.respond(result, None)
