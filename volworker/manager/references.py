"""Manage references that name what the worker already manages.

A backend names the objects the worker made ``volume-<uuid>`` and
``snapshot-<uuid>``. A manage request whose reference is such a name, with
the uuid of a record the worker keeps, would hand one tenant's volume to
another and leave its record pointing at nothing; it is refused before the
backend is touched, as Cinder's ``check_already_managed_volume`` does.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from volworker import exception
from volworker.manager.operation import Operation
from volworker.state import records

__all__ = ["refuse_managed"]

_MANAGED_NAME = re.compile(r"(volume|snapshot)-([0-9a-fA-F-]{32,36})")


def _named_record(value: Any) -> tuple[str, str] | None:
    """``(kind, id)`` when ``value`` is the backend name of a worker object."""
    match = _MANAGED_NAME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    try:
        return match.group(1), str(uuid.UUID(match.group(2)))
    except ValueError:
        return None


async def refuse_managed(op: Operation, ref: dict[str, Any]) -> None:
    """Raise ManageExistingInvalidReference when ``ref`` names an object of
    a known record (other than the one this operation is creating)."""
    for key in ("source-name", "source-id"):
        named = _named_record(ref.get(key))
        if named is None or named[1] == op.resource_id:
            continue
        kind, object_id = named
        if await op.db(records.load, kind, object_id) is not None:
            raise exception.ManageExistingInvalidReference(
                existing_ref=ref,
                reason=f"{ref[key]} is already managed as {kind} {object_id}",
            )
