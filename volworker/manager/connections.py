"""Attach and detach: initialize_connection and terminate_connection.

Both are calls, journaled like casts because they start and stop exports on
the backend. A volume with at least one attachment is ``in-use``. A driver
gets back what it saved for the connector's initiator at earlier attachments
(``initiator_data``), and saves more with ``initiator_updates``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from volworker import exception
from volworker.manager.operation import Operation
from volworker.state import initiators, records

__all__ = [
    "initialize_connection",
    "rollback_initialize_connection",
    "terminate_connection",
]

ATTACHABLE = ("available", "in-use")


def _check_connection_info(info: Any) -> dict[str, Any]:
    # The message names what is wrong, never a value: connection info
    # carries credentials (an NBD export's pre-shared key).
    if not isinstance(info, dict):
        problem = f"a {type(info).__name__}, not a dict"
    elif not isinstance(info.get("driver_volume_type"), str):
        problem = "no driver_volume_type string"
    elif not isinstance(info.get("data"), dict):
        problem = "no data dict"
    else:
        return info
    raise exception.VolumeBackendAPIException(
        data=f"driver returned malformed connection info: {problem}"
    )


def _initiator_updates(info: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Take ``initiator_updates`` out of the connection info: (set, remove)."""
    updates = info.pop("initiator_updates", None)
    if updates is None:
        return {}, []
    if isinstance(updates, dict):
        set_values = updates.get("set_values") or {}
        remove = updates.get("remove_values") or []
        if (
            isinstance(set_values, dict)
            and isinstance(remove, list)
            and all(
                isinstance(item, str)
                for item in [*set_values, *set_values.values(), *remove]
            )
        ):
            return set_values, remove
    raise exception.VolumeBackendAPIException(
        data="driver returned malformed initiator_updates: want "
        "{set_values: {str: str}, remove_values: [str]}"
    )


def _attached(
    session: Session,
    service: str,
    owner: str,
    volume_id: str,
    connector: dict[str, Any],
    info: dict[str, Any],
    updates: tuple[dict[str, str], list[str]],
) -> None:
    records.attach(session, volume_id, connector, info, served_by=owner)
    initiator = connector.get("initiator")
    if initiator and any(updates):
        initiators.update(session, initiator, service, *updates)


async def initialize_connection(op: Operation) -> dict[str, Any]:
    record, volume = await op.load_volume(op.resource_id)
    if record["status"] not in ATTACHABLE:
        raise exception.InvalidVolume(
            reason=f"volume {volume.id} is {record['status']}"
        )
    connector = op.args["connector"]
    initiator = connector.get("initiator")
    saved = None
    if initiator:
        saved = await op.db(initiators.load, initiator, op.runtime.service)
    volume = await op.begin(None)
    await op.call(op.driver.create_export, op.context, volume, connector)
    try:
        info = _check_connection_info(
            await op.call(op.driver.initialize_connection, volume, connector, saved)
        )
        updates = _initiator_updates(info)
    except BaseException:
        if not volume.attachments:
            await op.call(op.driver.remove_export, op.context, volume)
        raise
    await op.db(
        _attached,
        op.runtime.service,
        op.runtime.owner,
        volume.id,
        connector,
        info,
        updates,
    )
    await op.finish(status="in-use")
    return info


async def _detach(op: Operation, connector: dict[str, Any] | None, force: bool) -> str:
    """End the connection; return the volume's status afterwards: ``in-use``
    or ``available`` by what is left attached, except that a volume in
    another status (``error_extending`` after an online extend failed)
    keeps it: a detach does not make a failure disappear."""
    _, volume = await op.load_volume(op.resource_id)
    await op.call(op.driver.terminate_connection, volume, connector, force=force)
    host = connector["host"] if connector else None
    remaining = await op.db(records.detach, volume.id, host)
    if not remaining:
        await op.call(op.driver.remove_export, op.context, volume)
    if volume.status not in ATTACHABLE:
        return str(volume.status)
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
