"""The journal's steps, as units of work for the state store.

An operation is journaled (``accept``) before it is acknowledged to the
broker, marked running with its object's transitional status (``begin``)
before the backend is touched, and closed together with its object's final
state (``finish``) in one transaction. Recovery reads what was left open.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from volworker import exception
from volworker.manager.request import Request
from volworker.objects import Snapshot, Volume
from volworker.state import api

__all__ = [
    "abandon",
    "accept",
    "begin",
    "finish",
    "load_snapshot",
    "load_volume",
    "record_rejected",
    "unfinished",
]

View = tuple[dict[str, Any], Any]


def load_volume(
    session: Session, service: str, volume_id: str
) -> tuple[dict[str, Any], Volume]:
    """The volume's record and driver object; VolumeNotFound if not ours."""
    row = api.get_volume(session, volume_id)
    if row is None or row.service != service:
        raise exception.VolumeNotFound(volume_id=volume_id)
    attachments = api.list_attachments(session, volume_id)
    return row.to_dict(), row.to_volume(attachments)


def load_snapshot(
    session: Session, service: str, snapshot_id: str
) -> tuple[dict[str, Any], Snapshot]:
    """The snapshot's record and driver object; SnapshotNotFound if not ours."""
    row = api.get_snapshot(session, snapshot_id)
    if row is None or row.service != service:
        raise exception.SnapshotNotFound(snapshot_id=snapshot_id)
    _, volume = load_volume(session, service, row.volume_id)
    return row.to_dict(), row.to_snapshot(volume)


def _load(session: Session, service: str, kind: str, resource_id: str) -> View:
    if kind == "volume":
        return load_volume(session, service, resource_id)
    return load_snapshot(session, service, resource_id)


def _new_record(
    session: Session, service: str, kind: str, args: dict[str, Any]
) -> bool:
    """Insert the record a create starts with; False when the id exists."""
    if kind == "volume":
        fields = args["volume"]
        if api.get_volume(session, fields["id"]) is not None:
            return False
        api.add_volume(
            session,
            id=fields["id"],
            service=service,
            host=fields["host"],
            pool=fields["host"].partition("#")[2],
            size=fields["size"],
            status="creating",
            display_name=fields.get("name"),
            volume_type=fields.get("volume_type"),
            meta=fields.get("metadata") or {},
            snapshot_id=fields.get("snapshot_id"),
            source_volid=fields.get("source_volid"),
            image_id=fields.get("image_id"),
        )
        return True
    fields = args["snapshot"]
    if api.get_snapshot(session, fields["id"]) is not None:
        return False
    volume = api.get_volume(session, fields["volume_id"])
    api.add_snapshot(
        session,
        id=fields["id"],
        volume_id=fields["volume_id"],
        service=service,
        status="creating",
        size=volume.size if volume is not None else 0,
        display_name=fields.get("name"),
        meta=fields.get("metadata") or {},
    )
    return True


def accept(
    session: Session,
    *,
    service: str,
    owner: str,
    request: Request,
    kind: str,
    resource_id: str,
    creates: bool,
) -> int | None:
    """Journal a request; None when it is a duplicate and must not run."""
    if request.message_id and api.find_operation_by_message(
        session, request.message_id
    ):
        return None
    try:
        # NOTE: another member of a cluster may journal the same create or
        # the same message at the same moment; the loser is the duplicate.
        with session.begin_nested():
            if creates and not _new_record(session, service, kind, request.args):
                return None
            return api.add_operation(
                session,
                message_id=request.message_id,
                service=service,
                action=request.action,
                resource_type=kind,
                resource_id=resource_id,
                args=request.args,
                request_id=request.context.request_id,
                state="accepted",
                owner=owner,
            )
    except sa_exc.IntegrityError:
        return None


def begin(
    session: Session,
    service: str,
    seq: int,
    kind: str,
    resource_id: str,
    status: str | None,
) -> tuple[str, dict[str, Any], Any]:
    """Mark the operation running and set its object's transitional status.

    Returns the status the object had, its record and its driver object.
    """
    api.set_operation_state(session, seq, "running")
    before, obj = _load(session, service, kind, resource_id)
    if status is None or status == before["status"]:
        return before["status"], before, obj
    _update(session, kind, resource_id, {"status": status, "error": None})
    record, obj = _load(session, service, kind, resource_id)
    return before["status"], record, obj


def _update(
    session: Session, kind: str, resource_id: str, fields: dict[str, Any]
) -> None:
    if kind == "volume":
        api.update_volume(session, resource_id, **fields)
    else:
        api.update_snapshot(session, resource_id, **fields)


def finish(  # noqa: PLR0913 - one journal entry's outcome
    session: Session,
    service: str,
    seq: int,
    kind: str,
    resource_id: str,
    *,
    fields: dict[str, Any] | None = None,
    delete: bool = False,
    state: str = "done",
    error: str | None = None,
) -> dict[str, Any] | None:
    """Close the operation and leave its object final, in one transaction.

    Returns the object's record as it now is (as it was, with status
    ``deleted``, when it was deleted), or None when there is no object.
    """
    api.set_operation_state(session, seq, state, error=error)
    try:
        record, _ = _load(session, service, kind, resource_id)
    except (exception.VolumeNotFound, exception.SnapshotNotFound):
        return None
    if delete:
        if kind == "volume":
            api.delete_attachment(session, resource_id)
            api.delete_volume(session, resource_id)
        else:
            api.delete_snapshot(session, resource_id)
        return {**record, "status": "deleted"}
    if fields:
        _update(session, kind, resource_id, fields)
        record, _ = _load(session, service, kind, resource_id)
    return record


def record_rejected(
    session: Session, service: str, kind: str, args: dict[str, Any], error: str
) -> dict[str, Any] | None:
    """A refused create whose id is usable: keep the object, in ``error``.

    Returns the record, or None when there is no new id to record under.
    """
    obj = args.get(kind)
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        return None
    # NOTE: only the id needs to be sound to record the failure under it.
    try:
        resource_id = str(uuid.UUID(obj["id"]))
    except ValueError:
        return None
    if kind == "volume":
        if api.get_volume(session, resource_id) is not None:
            return None
        size = obj.get("size")
        api.add_volume(
            session,
            id=resource_id,
            service=service,
            host=str(obj.get("host"))[:255],
            pool=None,
            size=size if isinstance(size, int) and not isinstance(size, bool) else 0,
            status="error",
            error=error,
            meta={},
        )
        return load_volume(session, service, resource_id)[0]
    return None


def unfinished(session: Session, service: str) -> list[dict[str, Any]]:
    """The service's operations that were accepted or running, in order."""
    return list(api.unfinished_operations(session, service))


def abandon(session: Session, seq: int) -> None:
    """Close an operation that will never run."""
    api.set_operation_state(session, seq, "rolled_back", error="abandoned at recovery")
