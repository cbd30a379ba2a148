"""What the RPC layer hands to the manager: one request, already validated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from volworker.context import RequestContext

__all__ = ["Request", "Responder"]

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
