"""An operation's transitions, each one store work item (one transaction).

An operation is journaled (``accept``) before it is acknowledged to the
broker, marked running with its object's transitional status (``begin``)
before the backend is touched, and closed together with its object's final
state (``finish``). The journal row and the record change together, so a
crash between two transitions leaves them consistent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from volworker.manager import group_records
from volworker.manager.request import Request
from volworker.objects import Snapshot, Volume
from volworker.state import operations, records
from volworker.state.models import utcnow
from volworker.state.store import StoreError

__all__ = [
    "ATTACHMENT_CALLS",
    "Accepted",
    "Elsewhere",
    "abandon",
    "accept",
    "begin",
    "finish",
    "is_transient",
    "load_row",
    "load_snapshot",
    "load_volume",
    "needs_lookup",
    "record_rejected",
    "snapshot_row",
    "volume_row",
    "volumes_touched",
]


def volume_row(session: Session, service: str, volume_id: str) -> Any:
    """The volume's row (detached); VolumeNotFound if not ours."""
    return records.load_owned(session, service, "volume", volume_id)


def snapshot_row(session: Session, service: str, snapshot_id: str) -> Any:
    """The snapshot's row (detached); SnapshotNotFound if not ours."""
    return records.load_owned(session, service, "snapshot", snapshot_id)


def load_volume(
    session: Session, service: str, volume_id: str
) -> tuple[dict[str, Any], Volume]:
    """The volume's record and driver object; VolumeNotFound if not ours."""
    row = volume_row(session, service, volume_id)
    return row.to_dict(), row.to_volume(records.attachments(session, volume_id))


def load_snapshot(
    session: Session, service: str, snapshot_id: str
) -> tuple[dict[str, Any], Snapshot]:
    """The snapshot's record and driver object; SnapshotNotFound if not ours."""
    row = snapshot_row(session, service, snapshot_id)
    _, volume = load_volume(session, service, row.volume_id)
    return row.to_dict(), row.to_snapshot(volume)


def _new_record(
    session: Session, service: str, request: Request, kind: str
) -> tuple[Any, Any] | None:
    """Insert the record a create starts with; return the row and the driver
    object, or None when the id is taken."""
    args = request.args
    if kind in ("group", "group_snapshot"):
        row = group_records.new_group_records(session, service, request.action, args)
        return None if row is None else (row, None)
    if kind == "volume":
        fields = args["volume"]
        row = records.insert(
            session,
            "volume",
            id=fields["id"],
            service=service,
            host=fields["host"],
            pool=fields["host"].partition("#")[2] or None,
            size=fields["size"],
            status="creating",
            display_name=fields.get("name"),
            volume_type=fields.get("volume_type"),
            meta=fields.get("metadata") or {},
            snapshot_id=fields.get("snapshot_id"),
            source_volid=fields.get("source_volid"),
            image_id=fields.get("image_id"),
            provider_location=None,
            provider_auth=None,
            group_id=fields.get("group_id"),
        )
        return None if row is None else (row, row.to_volume())
    fields = args["snapshot"]
    volume = records.load(session, "volume", fields["volume_id"])
    row = records.insert(
        session,
        "snapshot",
        id=fields["id"],
        volume_id=fields["volume_id"],
        service=service,
        status="creating",
        size=volume.size if volume is not None else 0,
        display_name=fields.get("name"),
        meta=fields.get("metadata") or {},
        provider_location=None,
    )
    if row is None:
        return None
    if volume is None:
        return row, None
    parent = volume.to_volume(records.attachments(session, volume.id))
    return row, row.to_snapshot(parent)


def is_transient(error: BaseException) -> bool:
    """Whether journaling may succeed if the same request comes again.

    A lost or busy database is transient: the message stays on the broker.
    Anything else (the request's data cannot be stored) will fail the same
    way for ever.
    """
    return isinstance(error, (sa_exc.OperationalError, StoreError))


def needs_lookup(request: Request) -> bool:
    """Whether the volumes a request touches must be looked up."""
    if request.action in group_records.GROUP_ACTIONS:
        return True
    volume = request.args.get("volume") or {}
    return (
        request.action == "create_volume"
        and not volume.get("source_volid")
        and bool(volume.get("snapshot_id"))
    )


def volumes_touched(
    session: Session | None, request: Request, service: str
) -> set[str]:
    """The volumes a command touches: its own, a snapshot's, a clone's
    source, a group's members (and the group's own key); its place in line
    and its locks. ``session`` is needed only when :func:`needs_lookup`
    says so."""
    args = request.args
    if request.action in group_records.GROUP_ACTIONS:
        assert session is not None
        return group_records.volumes_touched(session, service, request.action, args)
    if "snapshot" in args:
        return {args["snapshot"]["volume_id"]}
    volume = args["volume"]
    keys = {volume["id"]}
    if volume.get("group_id"):
        keys.add(volume["group_id"])
    if request.action == "create_volume":
        if volume.get("source_volid"):
            keys.add(volume["source_volid"])
        elif volume.get("snapshot_id") and session is not None:
            source = records.snapshot_volume_id(session, volume["snapshot_id"])
            if source:
                keys.add(source)
    return keys


@dataclass(frozen=True)
class Elsewhere:
    """A request for an attachment another member of the cluster serves:
    that member must do it (its export runs on its host)."""

    owner: str


#: Calls on an attachment, which only the member serving it can do.
ATTACHMENT_CALLS = frozenset({"initialize_connection", "terminate_connection"})


@dataclass
class Accepted:
    """A journaled request; for a create, also the record it inserted."""

    seq: int
    volumes: set[str]
    row: Any = None
    obj: Any = None


def accept(
    session: Session,
    *,
    service: str,
    owner: str,
    request: Request,
    kind: str,
    resource_id: str,
    creates: bool,
    shared: bool = False,
) -> Accepted | Elsewhere | None:
    """Journal a request; None when it is a duplicate and must not run: its
    message id was journaled before, or the id a create names is taken.

    ``shared``: the journal is a cluster's, and its order must be the order
    in which entries become visible (see operations.serialize_accepts).
    """
    # Keys taken mean a duplicate, also when another member of a
    # cluster journals the same request at the same moment; inserts that
    # skip taken keys need no SAVEPOINT, which would cost as much.
    if shared:
        if request.action in ATTACHMENT_CALLS:
            server = _served_elsewhere(session, owner, request)
            if server is not None:
                return Elsewhere(server)
        operations.serialize_accepts(session)
    row = obj = None
    if creates:
        created = _new_record(session, service, request, kind)
        if created is None:
            return None
        row, obj = created
    volumes = volumes_touched(session, request, service)
    seq = operations.insert(
        session,
        volumes=volumes,
        message_id=request.message_id or None,
        service=service,
        action=request.action,
        resource_type=kind,
        resource_id=resource_id,
        args=request.args,
        request_id=request.context.request_id,
        state="accepted",
        owner=owner,
    )
    if seq is None:
        if creates:
            records.delete(session, kind, resource_id)  # the message came before
        return None
    return Accepted(seq, volumes, row, obj)


def load_row(session: Session, service: str, kind: str, resource_id: str) -> Any:
    """The object's row (detached); its NotFound error if not ours."""
    return records.load_owned(session, service, kind, resource_id)


def _driver_object(session: Session, service: str, kind: str, row: Any) -> Any:
    if kind == "volume":
        return row.to_volume(records.attachments(session, row.id))
    if kind == "snapshot":
        _, volume = load_volume(session, service, row.volume_id)
        return row.to_snapshot(volume)
    if kind == "group":
        return group_records.load_group(session, service, row.id)[1]
    return group_records.load_group_snapshot(session, service, row.id)[1]


def begin(
    session: Session,
    service: str,
    owner: str,
    seq: int,
    kind: str,
    resource_id: str,
    status: str | None,
) -> tuple[str, Any, Any]:
    """Mark ``owner``'s operation running and set its object's transitional
    status (TakenOver when it is no longer ``owner``'s).

    Returns the status the object had, its row and its driver object.
    """
    operations.set_state(session, seq, "running", owner=owner)
    row = load_row(session, service, kind, resource_id)
    before = row.status
    if status is not None and status != before:
        now = utcnow()
        records.update(
            session, kind, resource_id, status=status, error=None, updated_at=now
        )
        records.apply(row, status=status, error=None, updated_at=now)
    return before, row, _driver_object(session, service, kind, row)


def finish(  # noqa: PLR0913 - one journal entry's outcome
    session: Session,
    service: str,
    owner: str,
    seq: int,
    kind: str,
    resource_id: str,
    *,
    row: Any = None,
    fields: dict[str, Any] | None = None,
    delete: bool = False,
    state: str = "done",
    error: str | None = None,
    started_at: Any = None,
    also: Callable[[Session], None] | None = None,
) -> Any:
    """Close the operation and leave its object final, in one transaction.

    ``row`` is the object's row as the operation last saw it (loaded here
    when None); ``started_at`` is when it began, if begin() wrote nothing;
    ``also`` writes what else ends with it (a group's members).
    Returns the row as it now is (status ``deleted`` when deleted), or None
    when there is no object. TakenOver when the operation is no longer
    ``owner``'s: then nothing is written.
    """
    operations.set_state(
        session, seq, state, error=error, started_at=started_at, owner=owner
    )
    if also is not None:
        also(session)
    if row is None:
        row = records.load(session, kind, resource_id)
        if row is None or row.service != service:
            return None
    if delete:
        records.delete(session, kind, resource_id)
        return records.apply(row, status="deleted")
    if fields:
        now = utcnow()
        records.update(session, kind, resource_id, updated_at=now, **fields)
        records.apply(row, updated_at=now, **fields)
    return row


def _served_elsewhere(session: Session, owner: str, request: Request) -> str | None:
    """Who serves the attachment an attach or detach is about, when that is
    another worker (a member serving no attachment of it does it itself).
    An attach another member has journaled but not finished counts: its
    export will be served there."""
    volume_id = request.args["volume"]["id"]
    connector = request.args.get("connector")
    host = connector.get("host") if isinstance(connector, dict) else None
    servers = records.attachment_servers_of(session, volume_id, host)
    servers |= operations.unfinished_owners(session, "initialize_connection", volume_id)
    others = sorted(s for s in servers if s != owner)
    return None if not others or owner in servers else others[0]


def _sound_id(value: Any) -> str | None:
    """A canonical UUID from ``value``, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _storable(value: Any, limit: int = 255) -> str:
    """Text a column can hold: what was refused may be what was wrong."""
    return str(value)[:limit].encode("utf-8", "replace").decode()


def record_rejected(
    session: Session, service: str, kind: str, args: dict[str, Any], error: str
) -> dict[str, Any] | None:
    """A refused create whose id is usable: keep the object, in ``error``.

    Returns the record, or None when there is no new id to record under.
    """
    obj = args.get(kind)
    resource_id = _sound_id(obj.get("id")) if isinstance(obj, dict) else None
    if obj is None or resource_id is None or kind == "snapshot":
        return None
    fields: dict[str, Any] = {
        "id": resource_id,
        "service": service,
        "status": "error",
        "error": error,
    }
    if kind == "volume":
        size = obj.get("size")
        sized = isinstance(size, int) and not isinstance(size, bool)
        fields.update(
            host=_storable(obj.get("host")), pool=None, size=size if sized else 0
        )
    elif kind == "group":
        fields.update(host=_storable(obj.get("host")))
    else:
        fields.update(group_id=_storable(obj.get("group_id"), 36))
    row = records.insert(session, kind, **fields)
    return None if row is None else dict(row.to_dict())


def abandon(session: Session, owner: str, seq: int) -> None:
    """Close an operation that will never run."""
    operations.set_state(
        session, seq, "rolled_back", error="abandoned at recovery", owner=owner
    )
