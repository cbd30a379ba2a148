"""Calls that only read: records, listings, capabilities, manageable objects.

A query about records is answered by one store work item, submitted from
the RPC thread in arrival order, so it sees every request that arrived
before it (a ``get_volume`` right after a ``create_volume`` cast finds the
volume ``creating``). The others run on the event loop.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from volworker import exception
from volworker.manager import group_records, transitions
from volworker.manager.request import Request
from volworker.manager.runtime import Runtime
from volworker.objects import Snapshot, Volume
from volworker.state import groups, records

__all__ = [
    "Query",
    "answer",
    "answer_from",
    "capabilities",
    "get_group",
    "get_group_snapshot",
    "get_snapshot",
    "get_volume",
    "list_groups",
    "list_volumes",
    "manageable_snapshots",
    "manageable_volumes",
    "publish_capabilities",
]

LOG = logging.getLogger(__name__)

#: Store work answering a query about records, from the service and args.
RecordWork = Callable[[str, dict[str, Any]], Callable[[Session], Any]]


@dataclass(frozen=True)
class Query:
    """An action that reads (or, for the capability fanout, asks for a
    report); nothing is journaled."""

    #: answers on the event loop
    run: Callable[[Runtime, Request], Awaitable[Any]]
    #: answers from the store alone, straight from the RPC thread
    records: RecordWork | None = None
    #: a call: sent as a cast, there is nobody to answer and it is ignored
    reply: bool = True


def _volume_work(service: str, args: dict[str, Any]) -> Callable[[Session], Any]:
    def work(session: Session) -> dict[str, Any]:
        row = transitions.volume_row(session, service, args["volume_id"])
        return dict(row.to_dict())

    return work


def _snapshot_work(service: str, args: dict[str, Any]) -> Callable[[Session], Any]:
    def work(session: Session) -> dict[str, Any]:
        row = transitions.snapshot_row(session, service, args["snapshot_id"])
        return dict(row.to_dict())

    return work


def _list_work(service: str, args: dict[str, Any]) -> Callable[[Session], Any]:
    return functools.partial(
        records.list_volumes,
        service=service,
        marker=args["marker"],
        limit=args["limit"],
    )


async def _from_records(work: RecordWork, runtime: Runtime, request: Request) -> Any:
    return await runtime.db(work(runtime.service, request.args))


def _group_work(service: str, args: dict[str, Any]) -> Callable[[Session], Any]:
    def work(session: Session) -> dict[str, Any]:
        return group_records.load_group(session, service, args["group_id"])[0]

    return work


def _group_snapshot_work(
    service: str, args: dict[str, Any]
) -> Callable[[Session], Any]:
    def work(session: Session) -> dict[str, Any]:
        found = group_records.load_group_snapshot(
            session, service, args["group_snapshot_id"]
        )
        return found[0]

    return work


def _groups_work(service: str, args: dict[str, Any]) -> Callable[[Session], Any]:
    return functools.partial(
        groups.list_groups, service=service, marker=args["marker"], limit=args["limit"]
    )


def _record_query(work: RecordWork) -> Query:
    return Query(functools.partial(_from_records, work), work)


get_volume = _record_query(_volume_work)
get_snapshot = _record_query(_snapshot_work)
list_volumes = _record_query(_list_work)
get_group = _record_query(_group_work)
get_group_snapshot = _record_query(_group_snapshot_work)
list_groups = _record_query(_groups_work)


async def _capabilities(runtime: Runtime, request: Request) -> Any:
    """The latest capabilities; with ``discover`` fresh ones from the driver.
    In a cluster the answer also says who is in it (``cluster``)."""
    if request.args["discover"]:
        found = await runtime.capabilities.discover()
    else:
        found = runtime.capabilities.latest()
    if runtime.cluster is None:
        return found
    return {**found, "cluster": await runtime.cluster()}


async def _publish(runtime: Runtime, request: Request) -> None:
    runtime.capabilities.request()


capabilities = Query(_capabilities)
publish_capabilities = Query(_publish, reply=False)


def _page(args: dict[str, Any]) -> tuple[Any, Any, Any, Any, Any]:
    """The manageable listings' paging arguments, in the seed's order."""
    keys = ("marker", "limit", "offset", "sort_keys", "sort_dirs")
    marker, limit, offset, sort_keys, sort_dirs = (args[key] for key in keys)
    return marker, limit, offset, sort_keys, sort_dirs


async def _managed(runtime: Runtime) -> tuple[list[Volume], list[Snapshot]]:
    return await runtime.db(
        functools.partial(records.driver_objects, service=runtime.service)
    )


async def _manageable_volumes(runtime: Runtime, request: Request) -> Any:
    volumes, _ = await _managed(runtime)
    listing = runtime.driver.get_manageable_volumes
    page = _page(request.args)
    return await runtime.call(request.context.request_id, listing, volumes, *page)


async def _manageable_snapshots(runtime: Runtime, request: Request) -> Any:
    _, snapshots = await _managed(runtime)
    listing = runtime.driver.get_manageable_snapshots
    page = _page(request.args)
    return await runtime.call(request.context.request_id, listing, snapshots, *page)


manageable_volumes = Query(_manageable_volumes)
manageable_snapshots = Query(_manageable_snapshots)


def answer_from(request: Request, done: concurrent.futures.Future[Any]) -> None:
    """Reply with the outcome of a record query (on the store's thread)."""
    assert request.respond is not None
    try:
        result = done.result()
    except Exception as exc:
        request.respond(None, exc)
    else:
        request.respond(result, None)


async def answer(query: Query, runtime: Runtime, request: Request) -> None:
    """Run a query and send its reply (or its error) to the caller."""
    assert request.respond is not None
    try:
        result = await query.run(runtime, request)
    except exception.VolworkerError as exc:
        request.respond(None, exc)
    except Exception as exc:
        # The caller gets the message only; the traceback stays here.
        LOG.exception(
            "[%s] %s failed unexpectedly", request.context.request_id, request.action
        )
        request.respond(None, exception.VolumeBackendAPIException(data=str(exc)))
    else:
        request.respond(result, None)
