"""A dead member's attachments, taken over: exported again from this member
when the data path allows it (``driver.exports_survive_worker``), declared
lost otherwise, with an ``.error`` notification that names the connector.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from volworker.context import RequestContext
from volworker.manager import recovery, transitions
from volworker.manager.request import Request
from volworker.manager.runtime import Runtime
from volworker.state import records

__all__ = ["take_over_attachments"]

LOG = logging.getLogger(__name__)


async def take_over_attachments(
    runtime: Runtime, owner: str, submit: Callable[[Request], None]
) -> int:
    """Re-own the attachments ``owner`` served and export them again (an
    attach ``submit``-ted in the volume's turn, like a caller's) or declare
    them lost; return how many were taken over."""
    attachments = await recovery.take_over_attachments(runtime, owner)
    movable = runtime.driver.exports_survive_worker()
    for attachment in attachments:
        if attachment["lost"]:
            continue
        if movable:
            submit(await _attach_again(runtime, attachment))
        else:
            await _lose(runtime, owner, attachment)
    return len(attachments)


async def _attach_again(runtime: Runtime, attachment: dict[str, Any]) -> Request:
    record = await runtime.db(
        functools.partial(
            transitions.volume_row,
            service=runtime.service,
            volume_id=attachment["volume_id"],
        )
    )
    volume = {"id": record.id, "size": record.size, "host": record.host}
    args = {"volume": volume, "connector": dict(attachment["connector"])}
    return Request("initialize_connection", args)


async def _lose(runtime: Runtime, owner: str, attachment: dict[str, Any]) -> None:
    connector = attachment["connector"]
    reason = (
        f"the attachment to {connector.get('host')} is lost: {owner} is "
        "gone and this backend's exports cannot move to another member"
    )
    await runtime.db(
        functools.partial(
            records.mark_lost,
            volume_id=attachment["volume_id"],
            host=connector.get("host"),
            reason=reason,
        )
    )
    payload = {"id": attachment["volume_id"], "error": reason}
    runtime.notifications.emit(RequestContext(), "volume", "attach", "error", payload)
    LOG.error("Volume %s: %s", attachment["volume_id"], reason)
