"""Requests the worker refuses: before journaling (bad input, found by the
RPC layer) or because the journal cannot take them.

A refused create still leaves a record, in ``error``, when its id is sound,
so that a caller polling ``get_volume`` learns why; every refusal of a cast
is announced with an ``.error`` notification.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from volworker import exception
from volworker.context import RequestContext
from volworker.manager import transitions
from volworker.manager.actions import commands
from volworker.manager.request import Request
from volworker.manager.runtime import Runtime

__all__ = ["journal_failed", "record_refused"]

LOG = logging.getLogger(__name__)


def journal_failed(
    request: Request, error: Exception
) -> exception.VolworkerError | None:
    """Settle a request its journal entry failed for.

    A transient failure (the database is away) leaves the message on the
    broker, which delivers it again. Any other failure would recur for ever,
    so the request is acknowledged and refused like bad input: that refusal
    is returned, for the caller to record.
    """
    request_id = request.context.request_id
    if transitions.is_transient(error):
        LOG.error("[%s] Could not journal %s: %s", request_id, request.action, error)
        if request.respond:
            request.respond(
                None,
                exception.VolumeBackendAPIException(
                    data=f"the journal is unavailable: {error}"
                ),
            )
        return None
    LOG.error(
        "[%s] Refused %s: it cannot be journaled: %s", request_id, request.action, error
    )
    refusal = exception.InvalidInput(reason=f"it cannot be stored: {error}")
    request.acknowledge()
    if request.respond:
        request.respond(None, refusal)
    return refusal


async def record_refused(
    runtime: Runtime,
    method: str,
    args: dict[str, Any],
    error: exception.VolworkerError,
    context: RequestContext,
) -> None:
    """Record (for a create) and announce a cast refused before it ran."""
    command = commands().get(method)
    if command is None:
        return
    record = None
    if command.creates:
        try:
            record = await runtime.db(
                functools.partial(
                    transitions.record_rejected,
                    service=runtime.service,
                    kind=command.kind,
                    args=args,
                    error=str(error),
                )
            )
        except Exception as exc:
            LOG.warning("Could not record the refused request: %s", exc)
    obj = args.get(command.kind)
    raw_id = obj.get("id") if isinstance(obj, dict) else None
    payload = dict(record or {"id": str(raw_id)[:64] if raw_id is not None else None})
    payload["error"] = str(error)
    runtime.notifications.emit(context, command.kind, command.event, "error", payload)
