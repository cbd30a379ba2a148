"""What the fake backend holds, and every kind of change to it.

A change is an effect: the driver method's name and a small dict (ids,
pool, size, source). The same function applies an effect live and when the
objects are restored from the effects log, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from volworker.objects import SNAPSHOT_NAME_TEMPLATE, VOLUME_NAME_TEMPLATE

__all__ = ["FakeObject", "Objects", "apply"]


@dataclass
class FakeObject:
    pool: str
    size: int
    source: str | None = None  # what a volume or snapshot was made from


class Objects(Protocol):
    """The backend's objects by backend name, managed or not."""

    volumes: dict[str, FakeObject]
    snapshots: dict[str, FakeObject]
    unmanaged: dict[str, FakeObject]
    unmanaged_snapshots: dict[str, FakeObject]


def apply(objects: Objects, method: str, effect: dict[str, Any]) -> None:
    """Change the objects as ``method``'s ``effect`` says."""
    _APPLY.get(method, _no_object_change)(objects, effect)


def _volume_name(effect: dict[str, Any]) -> str:
    return VOLUME_NAME_TEMPLATE % effect["volume"]


def _snapshot_name(effect: dict[str, Any]) -> str:
    return SNAPSHOT_NAME_TEMPLATE % effect["snapshot"]


def _made_volume(objects: Objects, effect: dict[str, Any]) -> None:
    objects.unmanaged.pop(effect.get("reference", ""), None)
    objects.volumes[_volume_name(effect)] = FakeObject(
        effect["pool"], effect["size"], effect.get("source")
    )


def _deleted_volume(objects: Objects, effect: dict[str, Any]) -> None:
    objects.volumes.pop(_volume_name(effect), None)


def _unmanaged_volume(objects: Objects, effect: dict[str, Any]) -> None:
    name = _volume_name(effect)
    objects.unmanaged[name] = objects.volumes.pop(name)


def _extended_volume(objects: Objects, effect: dict[str, Any]) -> None:
    objects.volumes[_volume_name(effect)].size = effect["size"]


def _filled_volume(objects: Objects, effect: dict[str, Any]) -> None:
    objects.volumes[_volume_name(effect)].source = effect["source"]


def _made_snapshot(objects: Objects, effect: dict[str, Any]) -> None:
    objects.unmanaged_snapshots.pop(effect.get("reference", ""), None)
    objects.snapshots[_snapshot_name(effect)] = FakeObject(
        effect["pool"], effect["size"], _volume_name(effect)
    )


def _deleted_snapshot(objects: Objects, effect: dict[str, Any]) -> None:
    objects.snapshots.pop(_snapshot_name(effect), None)


def _unmanaged_snapshot(objects: Objects, effect: dict[str, Any]) -> None:
    name = _snapshot_name(effect)
    objects.unmanaged_snapshots[name] = objects.snapshots.pop(name)


def _deleted_group(objects: Objects, effect: dict[str, Any]) -> None:
    for volume_id in effect["volumes"]:
        _deleted_volume(objects, {"volume": volume_id})


def _made_group_snapshot(objects: Objects, effect: dict[str, Any]) -> None:
    for taken in effect["taken"]:
        _made_snapshot(objects, taken)


def _deleted_group_snapshot(objects: Objects, effect: dict[str, Any]) -> None:
    for snapshot_id in effect["snapshots"]:
        _deleted_snapshot(objects, {"snapshot": snapshot_id})


def _made_group_volumes(objects: Objects, effect: dict[str, Any]) -> None:
    for made in effect["made"]:
        _made_volume(objects, made)


def _no_object_change(objects: Objects, effect: dict[str, Any]) -> None:
    """A revert (the fake keeps no data) or an export. Exports end with the
    process, like the file driver's NBD servers, and the worker restores
    them at start (ensure_export): they are recorded, never restored."""


_APPLY: dict[str, Callable[[Objects, dict[str, Any]], None]] = {
    "create_volume": _made_volume,
    "create_volume_from_snapshot": _made_volume,
    "create_cloned_volume": _made_volume,
    "manage_existing": _made_volume,
    "delete_volume": _deleted_volume,
    "unmanage": _unmanaged_volume,
    "extend_volume": _extended_volume,
    "copy_image_to_volume": _filled_volume,
    "create_snapshot": _made_snapshot,
    "manage_existing_snapshot": _made_snapshot,
    "delete_snapshot": _deleted_snapshot,
    "unmanage_snapshot": _unmanaged_snapshot,
    "delete_group": _deleted_group,
    "create_group_snapshot": _made_group_snapshot,
    "delete_group_snapshot": _deleted_group_snapshot,
    "create_group_from_src": _made_group_volumes,
}
