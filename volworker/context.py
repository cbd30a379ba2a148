"""The request context handed to drivers and carried through log lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from volworker import unique

__all__ = ["RequestContext"]


def _new_request_id() -> str:
    return "req-" + unique.uuid4_text()


@dataclass(frozen=True)
class RequestContext:
    """Who asked for an operation, and under which request id.

    volworker has no users or projects of its own; the context exists so that
    every driver call and log line can be tied to the request that caused it.
    """

    request_id: str = field(default_factory=_new_request_id)
    global_request_id: str | None = None
    is_admin: bool = True

    @classmethod
    def admin(cls) -> RequestContext:
        """A context for work the worker starts itself (setup, recovery)."""
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "global_request_id": self.global_request_id,
        }

    def redacted_copy(self) -> dict[str, Any]:
        """What oslo.messaging's Notifier sends along: nothing secret here.

        The Notifier drops a plain dict context; it takes an object's
        redacted_copy() instead.
        """
        return self.to_dict()
