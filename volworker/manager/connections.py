"""Attach and detach: initialize_connection and terminate_connection.

Both are calls, journaled like casts because they start and stop exports on
the backend. A volume with at least one attachment is ``in-use``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from volworker import exception
from volworker.manager.operation import Operation
from volworker.state import api

__all__ = [
    "initialize_connection",
    "rollback_initialize_connection",
    "terminate_connection",
]

ATTACHABLE = ("available", "in-use")


def _check_connection_info(info: Any) -> dict[str, Any]:
    if (
        not isinstance(info, dict)
        or not isinstance(info.get("driver_volume_type"), str)
        or not isinstance(info.get("data"), dict)
    ):
        raise exception.VolumeBackendAPIException(
            data=f"driver returned malformed connection info: {info!r}"[:300]
        )
    return info


def _remember(
    session: Session, volume_id: str, connector: dict[str, Any], info: dict[str, Any]
) -> None:
    api.delete_attachment(session, volume_id, connector["host"])
    api.add_attachment(session, volume_id, connector, connection_info=info)


def _forget(session: Session, volume_id: str, host: str | None) -> int:
    """Drop the attachment(s); return how many remain."""
    api.delete_attachment(session, volume_id, host)
    return len(api.list_attachments(session, volume_id))


async def initialize_connection(op: Operation) -> dict[str, Any]:
    record, volume = await op.load_volume(op.resource_id)
    if record["status"] not in ATTACHABLE:
        raise exception.InvalidVolume(
            reason=f"volume {volume.id} is {record['status']}"
        )
    connector = op.args["connector"]
    volume = await op.begin(None)
    await op.driver("create_export", op.context, volume, connector)
    try:
        info = _check_connection_info(
            await op.driver("initialize_connection", volume, connector)
        )
    except BaseException:
        if not volume.attachments:
            await op.driver("remove_export", op.context, volume)
        raise
    await op.db(_remember, volume.id, connector, info)
    await op.finish(status="in-use")
    return info


async def _detach(op: Operation, connector: dict[str, Any] | None, force: bool) -> str:
    """End the connection; return the volume's status afterwards."""
    _, volume = await op.load_volume(op.resource_id)
    await op.manager.call_driver(
        op.request_id, "terminate_connection", volume, connector, force=force
    )
    host = connector["host"] if connector else None
    remaining = await op.db(_forget, volume.id, host)
    if not remaining:
        await op.driver("remove_export", op.context, volume)
    return "in-use" if remaining else "available"


async def terminate_connection(op: Operation) -> None:
    connector = op.args["connector"]
    if connector is None and not op.args["force"]:
        raise exception.InvalidInput(reason="connector may be null only with force")
    await op.begin(None)
    await op.finish(status=await _detach(op, connector, op.args["force"]))


async def rollback_initialize_connection(op: Operation) -> None:
    """After a crash mid-attach: the caller has given up, so undo it."""
    await op.begin(None)
    status = await _detach(op, op.args["connector"], True)
    await op.roll_back(
        "the worker restarted before the attachment was handed out", status=status
    )
