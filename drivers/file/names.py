"""The names of what the driver keeps in a pool, and the checks on names it is
given.

Layout of a pool directory::

    <pool>/volume-<uuid>                                  a volume (sparse raw)
    <pool>/unmanaged-volume-<uuid>                        an unmanaged volume
    <pool>/.snapshots/volume-<uuid>/snapshot-<uuid>       a snapshot
    <pool>/.snapshots/volume-<uuid>/unmanaged-snapshot-<uuid>
    <pool>/.tmp/                                          objects being made

Every name the driver builds comes from a canonical UUID, and every name it
is given (a manage reference) must be one plain, visible file name, so no path
the driver uses can leave its pool.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from volworker import exception

__all__ = [
    "SNAPSHOTS_DIR",
    "TMP_DIR",
    "UNMANAGED_PREFIX",
    "check_component",
    "check_uuid",
    "reference_name",
    "snapshot_dir",
    "snapshot_file",
    "snapshot_id_of",
    "volume_file",
    "volume_id_of",
]

SNAPSHOTS_DIR = ".snapshots"
TMP_DIR = ".tmp"
UNMANAGED_PREFIX = "unmanaged-"

_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_VOLUME_FILE = re.compile(f"volume-({_UUID})")
_SNAPSHOT_FILE = re.compile(f"snapshot-({_UUID})")


def check_uuid(value: object, what: str) -> str:
    """``value`` if it is a UUID in canonical form, else InvalidInput."""
    text = str(value)
    try:
        canonical = str(uuid.UUID(text))
    except ValueError:
        canonical = None
    if canonical != text:
        # Only the canonical form is accepted, so that one id always
        # maps to one file name and nothing else ever reaches a path.
        raise exception.InvalidInput(reason=f"{what} id {text!r} is not a UUID")
    return text


def volume_file(volume_id: str) -> str:
    return "volume-" + check_uuid(volume_id, "volume")


def snapshot_dir(volume_id: str) -> str:
    """The directory under .snapshots holding one volume's snapshots."""
    return volume_file(volume_id)


def snapshot_file(snapshot_id: str) -> str:
    return "snapshot-" + check_uuid(snapshot_id, "snapshot")


def volume_id_of(name: str) -> str | None:
    """The volume id a file name stands for, or None."""
    match = _VOLUME_FILE.fullmatch(name)
    return match.group(1) if match else None


def snapshot_id_of(name: str) -> str | None:
    """The snapshot id a file name stands for, or None."""
    match = _SNAPSHOT_FILE.fullmatch(name)
    return match.group(1) if match else None


def check_component(name: str) -> str:
    """``name`` if it is a single path component, else InvalidInput."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise exception.InvalidInput(reason=f"{name!r} is not a plain file name")
    return name


def reference_name(
    existing_ref: Any, what: str = "file", forbidden: str = "/\0"
) -> str:
    """The name a manage reference names; it must be one plain, visible
    name of a ``what`` (none of ``forbidden``, no '..', not hidden)."""

    def invalid(reason: str) -> exception.ManageExistingInvalidReference:
        return exception.ManageExistingInvalidReference(
            existing_ref=existing_ref, reason=reason
        )

    if not isinstance(existing_ref, dict):
        raise invalid("the reference is not a dictionary")
    name = existing_ref.get("source-name")
    if name is None:
        raise invalid(f"the reference needs 'source-name', a {what} name")
    if not isinstance(name, str) or not name:
        raise invalid("'source-name' must be a non-empty string")
    if any(c in name for c in forbidden) or name.startswith("."):
        shown = ", ".join(repr(c) for c in forbidden if c.isprintable())
        raise invalid(
            f"{name!r} is not a plain {what} name (no {shown}, no '..', not hidden)"
        )
    return name
