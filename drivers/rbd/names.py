"""The names the driver gives images and snapshots, and the checks on names
it is given.

In the pool::

    volume-<uuid>                   a volume
    volume-<uuid>.creating          a volume being made; renamed into place
                                    when whole, so a volume's name never
                                    holds half an image
    volume-<uuid>.deleted           a deleted volume kept for the clones that
                                    still hang from it, removed with the last
    unmanaged-volume-<uuid>         a volume the worker let go of

and on a volume's image::

    snapshot-<uuid>                 a snapshot
    snapshot-<uuid>.deleted         a deleted snapshot kept for its clones
    volume-<uuid>.clone_snap        the snapshot a cloned volume hangs from
    unmanaged-snapshot-<uuid>       a snapshot the worker let go of

and RBD groups of the pool's volumes::

    group-<uuid>                    a group
    group-snapshot-<uuid>           a group snapshot (librbd keeps its
                                    snapshot of each member image in the
                                    group namespace, hidden from users)

``.deleted`` and ``.clone_snap`` are Cinder's names for the same things, so
a pool Cinder's RBD driver ran is tidied the same way by this one.
"""

from __future__ import annotations

import re
from typing import Any

from volworker import exception
from volworker_drivers.file import names as file_names
from volworker_drivers.file.names import check_uuid

__all__ = [
    "UNMANAGED_PREFIX",
    "check_uuid",
    "clone_snapshot",
    "creating",
    "deleted",
    "group",
    "group_snapshot",
    "is_deferred",
    "is_internal",
    "is_kept_snapshot",
    "reference_name",
    "snapshot",
    "volume",
    "volume_id_of",
]

DELETED = ".deleted"
CLONE_SNAP = ".clone_snap"
CREATING = ".creating"
UNMANAGED_PREFIX = "unmanaged-"
MAX_NAME = 255
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_VOLUME = re.compile(f"volume-({_UUID})")


def volume(volume_id: str) -> str:
    return "volume-" + check_uuid(volume_id, "volume")


def snapshot(snapshot_id: str) -> str:
    return "snapshot-" + check_uuid(snapshot_id, "snapshot")


def group(group_id: str) -> str:
    return "group-" + check_uuid(group_id, "group")


def group_snapshot(group_snapshot_id: str) -> str:
    return "group-snapshot-" + check_uuid(group_snapshot_id, "group snapshot")


def clone_snapshot(clone_id: str) -> str:
    """The snapshot of its source that the volume ``clone_id`` is cloned from."""
    return volume(clone_id) + CLONE_SNAP


def creating(volume_id: str) -> str:
    return volume(volume_id) + CREATING


def deleted(name: str) -> str:
    return name + DELETED


def volume_id_of(name: str) -> str | None:
    """The id of the volume an image name stands for, or None."""
    match = _VOLUME.fullmatch(name)
    return match.group(1) if match else None


def is_deferred(name: str) -> bool:
    """Whether an image or snapshot is deleted but kept for its clones."""
    return name.endswith(DELETED)


def is_kept_snapshot(name: str) -> bool:
    """Whether a snapshot exists only for clones: the driver removes it as
    soon as none hangs from it."""
    return name.endswith((DELETED, CLONE_SNAP))


def is_internal(name: str) -> bool:
    """Whether an image or snapshot name is one of the driver's own states
    rather than something a user could manage."""
    return name.endswith((DELETED, CLONE_SNAP, CREATING))


def reference_name(existing_ref: Any) -> str:
    """The image or snapshot name a manage reference names: one plain name,
    not one of the driver's own."""
    name = file_names.reference_name(existing_ref, "image or snapshot", "/@\0")
    if len(name) > MAX_NAME or is_internal(name):
        raise exception.ManageExistingInvalidReference(
            existing_ref=existing_ref,
            reason=f"{name!r} is too long, or one of the driver's own names "
            "(being made or deleted)",
        )
    return name
