"""What the RPC layer hands to the manager: one request, already validated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from volworker.context import RequestContext

__all__ = ["CALL_ACTIONS", "CAST_ACTIONS", "QUERY_ACTIONS", "Request", "Responder"]

#: Casts that change a volume or snapshot: journaled, ordered per volume.
CAST_ACTIONS = frozenset(
    {
        "create_volume",
        "delete_volume",
        "extend_volume",
        "create_snapshot",
        "delete_snapshot",
        "revert_to_snapshot",
        "manage_existing",
        "manage_existing_snapshot",
        "copy_volume_to_image",
    }
)
#: Calls that change a volume: journaled and ordered too, with a reply.
CALL_ACTIONS = frozenset({"initialize_connection", "terminate_connection"})
#: Calls that only read.
QUERY_ACTIONS = frozenset(
    {
        "get_volume",
        "get_snapshot",
        "list_volumes",
        "get_capabilities",
        "get_manageable_volumes",
        "get_manageable_snapshots",
    }
)

#: Called once with the result, or with the error, of a call.
Responder = Callable[[Any, BaseException | None], None]


def _nothing() -> None:
    return None


@dataclass
class Request:
    """One validated request.

    ``acknowledge`` is called once the request is safe in the journal (or
    was refused): only then may the broker forget the message.
    ``respond`` is set for calls and receives the reply or the error.
    """

    action: str
    args: dict[str, Any]
    context: RequestContext = field(default_factory=RequestContext)
    message_id: str | None = None
    acknowledge: Callable[[], None] = _nothing
    respond: Responder | None = None
