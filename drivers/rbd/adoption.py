"""Adopting images and snapshots that are already in the pool, letting
volumes go, and listing what could be adopted.

A manage reference is ``{"source-name": NAME}``: an image of the pool (for a
volume) or a snapshot of the volume's image (for a snapshot). Managing
renames it to ``volume-<id>`` / ``snapshot-<id>``; unmanaging renames it to
``unmanaged-volume-<id>`` / ``unmanaged-snapshot-<id>``, a name that no
longer counts as a volume and that the listings offer again. An image that a
client has open (it has watchers) is not adopted.
"""

from __future__ import annotations

import logging
from typing import Any

from volworker import exception

from . import names
from .connections import attached
from .images import Images, size_gb

__all__ = [
    "adopt_snapshot",
    "adopt_volume",
    "manageable_snapshots",
    "manageable_volumes",
    "reference_size",
    "release_snapshot",
    "release_volume",
    "snapshot_reference_size",
]

LOG = logging.getLogger(__name__)


def _invalid(ref: Any, reason: str) -> exception.ManageExistingInvalidReference:
    return exception.ManageExistingInvalidReference(existing_ref=ref, reason=reason)


def _in_use(image: Any) -> str | None:
    """Why an image must not change hands now, or None."""
    watchers = list(image.watchers_list())
    if watchers:
        return f"open by {len(watchers)} client(s)"
    hosts = attached(image)
    return f"attached to {', '.join(hosts)}" if hosts else None


def reference_size(images: Images, ref: Any) -> int:
    name = names.reference_name(ref)
    size = images.size(name)
    if size is None:
        raise _invalid(ref, f"there is no image {name!r} in pool {images.pool}")
    return size_gb(size)


def adopt_volume(images: Images, ref: Any, volume_id: str, size: int) -> None:
    """Rename the image ``ref`` names to the volume's name, and grow it to
    ``size`` bytes when it is smaller. Redoing a finished adoption succeeds."""
    name = names.reference_name(ref)
    target = names.volume(volume_id)
    if name != target and not images.exists(name) and images.exists(target):
        LOG.info("%s/%s was adopted already", images.pool, target)
        return
    try:
        with images.open(name, read_only=True) as image:
            busy = _in_use(image)
    except images.lib.ImageNotFound:
        raise _invalid(
            ref, f"there is no image {name!r} in pool {images.pool}"
        ) from None
    if busy:
        raise _invalid(ref, f"image {name!r} is {busy}")
    if name != target:
        if images.exists(target):
            raise exception.VolumeBackendAPIException(
                data=f"cannot manage {name!r}: {images.pool}/{target} already exists"
            )
        images.rename(name, target)
        LOG.info("Adopted %s/%s as %s", images.pool, name, target)
    with images.open(target) as image:
        if image.size() < size:
            image.resize(size)


def release_volume(images: Images, volume_id: str) -> None:
    name = names.volume(volume_id)
    if not images.exists(name):
        LOG.warning("Nothing to unmanage: %s is not in pool %s", name, images.pool)
        return
    images.rename(name, names.UNMANAGED_PREFIX + name)
    LOG.info("Released %s/%s as %s%s", images.pool, name, names.UNMANAGED_PREFIX, name)


def _row(
    name: str, size: int, cinder_id: str | None, unsafe: str | None, extra: str
) -> dict[str, Any]:
    if cinder_id:
        unsafe = "already managed"
    return {
        "reference": {"source-name": name},
        "size": size_gb(size),
        "safe_to_manage": unsafe is None,
        "reason_not_safe": unsafe,
        "cinder_id": cinder_id,
        "extra_info": extra,
    }


def manageable_volumes(images: Images, managed: dict[str, str]) -> list[dict[str, Any]]:
    """Every image of the pool but the driver's own states. ``managed``
    maps the image names of the worker's volumes to their ids."""
    rows = []
    for name in images.names():
        if names.is_internal(name):
            continue
        try:
            with images.open(name, read_only=True) as image:
                size, unsafe = image.size(), _in_use(image)
        except images.lib.ImageNotFound:
            continue  # removed while we looked
        rows.append(_row(name, size, managed.get(name), unsafe, f"pool {images.pool}"))
    return rows


def _snapshot_of(images: Images, image: Any, ref: Any) -> tuple[str, int]:
    name = names.reference_name(ref)
    found = images.snapshots(image).get(name)
    if found is None:
        raise _invalid(ref, f"image {image.get_name()} has no snapshot {name!r}")
    return name, int(found["size"])


def snapshot_reference_size(images: Images, volume_id: str, ref: Any) -> int:
    with images.open(names.volume(volume_id), read_only=True) as image:
        return size_gb(_snapshot_of(images, image, ref)[1])


def adopt_snapshot(images: Images, ref: Any, volume_id: str, snapshot_id: str) -> None:
    """Rename the volume's snapshot ``ref`` names to ``snapshot-<id>``."""
    target = names.snapshot(snapshot_id)
    with images.open(names.volume(volume_id)) as image:
        snapshots = images.snapshots(image)
        if names.reference_name(ref) not in snapshots and target in snapshots:
            LOG.info("Snapshot %s was adopted already", target)
            return
        name, _ = _snapshot_of(images, image, ref)
        if name != target:
            image.rename_snap(name, target)
            LOG.info("Adopted snapshot %s of %s as %s", name, image.get_name(), target)


def release_snapshot(images: Images, volume_id: str, snapshot_id: str) -> None:
    name = names.snapshot(snapshot_id)
    try:
        with images.open(names.volume(volume_id)) as image:
            if name in images.snapshots(image):
                image.rename_snap(name, names.UNMANAGED_PREFIX + name)
                return
    except images.lib.ImageNotFound:
        pass
    LOG.warning("Nothing to unmanage: no snapshot %s of volume %s", name, volume_id)


def manageable_snapshots(
    images: Images, managed: dict[tuple[str, str], str]
) -> list[dict[str, Any]]:
    """Every snapshot of every volume image but the driver's own. ``managed``
    maps (image name, snapshot name) of the worker's snapshots to their ids."""
    rows = []
    for volume in images.names():
        if names.volume_id_of(volume) is None:
            continue
        try:
            with images.open(volume, read_only=True) as image:
                snapshots = images.snapshots(image)
        except images.lib.ImageNotFound:
            continue
        for name, snap in sorted(snapshots.items()):
            if names.is_internal(name):
                continue
            row = _row(
                name,
                int(snap["size"]),
                managed.get((volume, name)),
                None,
                f"pool {images.pool}",
            )
            row["source_reference"] = {"source-name": volume}
            rows.append(row)
    return rows
