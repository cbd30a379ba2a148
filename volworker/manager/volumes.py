"""Volume operations: create (blank, clone, from snapshot, from image),
delete, extend, revert, manage, copy to image."""

from __future__ import annotations

import logging
from typing import Any

from volworker import exception, image
from volworker.driver import Feature
from volworker.manager.operation import Operation, release_adopted
from volworker.manager.references import refuse_managed
from volworker.objects import Volume
from volworker.state import records

__all__ = [
    "copy_volume_to_image",
    "create_volume",
    "delete_volume",
    "extend_volume",
    "manage_existing",
    "revert_to_snapshot",
    "rollback_manage_existing",
]

LOG = logging.getLogger(__name__)

DELETABLE = frozenset(
    {"available", "error", "error_deleting", "error_extending", "deleting", "creating"}
)


def _settled_status(volume: Volume) -> str:
    return "in-use" if volume.attachments else "available"


def _require(condition: bool, error: exception.VolworkerError) -> None:
    if not condition:
        raise error


async def _create_from_image(op: Operation, volume: Volume) -> Any:
    image_id = str(volume.image_id)
    images = op.runtime.images
    meta = await op.runtime.blocking(images.show, op.context, image_id)
    location = await op.runtime.blocking(images.get_location, op.context, image_id)
    update, cloned = await op.call(
        op.driver.clone_image, op.context, volume, location, meta, images
    )
    if cloned:
        return update
    update = await op.call(op.driver.create_volume, volume)
    more = await op.call(
        op.driver.copy_image_to_volume, op.context, volume, images, image_id
    )
    return {**(update or {}), **(more or {})}


async def create_volume(op: Operation) -> None:
    group_id = op.args["volume"].get("group_id")
    if group_id:
        record, _ = await op.load_group(group_id)
        _require(
            record["status"] == "available",
            exception.InvalidInput(reason=f"group {group_id} is {record['status']}"),
        )
    volume: Volume = await op.begin("creating")
    if volume.snapshot_id:
        record, snapshot = await op.load_snapshot(volume.snapshot_id)
        _require(
            record["status"] == "available",
            exception.InvalidInput(
                reason=f"snapshot {snapshot.id} is {record['status']}, not available"
            ),
        )
        _require(
            volume.size >= snapshot.volume_size,
            exception.InvalidInput(
                reason=f"size {volume.size} is below the snapshot's "
                f"{snapshot.volume_size}"
            ),
        )
        update = await op.call(op.driver.create_volume_from_snapshot, volume, snapshot)
    elif volume.source_volid:
        record, source = await op.load_volume(volume.source_volid)
        _require(
            record["status"] in ("available", "in-use"),
            exception.InvalidVolume(
                reason=f"source volume {source.id} is {record['status']}"
            ),
        )
        _require(
            volume.size >= source.size,
            exception.InvalidInput(
                reason=f"size {volume.size} is below the source's {source.size}"
            ),
        )
        update = await op.call(op.driver.create_cloned_volume, volume, source)
    elif volume.image_id:
        update = await _create_from_image(op, volume)
    else:
        update = await op.call(op.driver.create_volume, volume)
    await op.finish(status="available", **op.model_update(update))


async def delete_volume(op: Operation) -> None:
    record, volume = await op.load_volume(op.resource_id)
    _require(
        not volume.attachments,
        exception.InvalidVolume(reason=f"volume {volume.id} is attached"),
    )
    _require(
        record["status"] in DELETABLE,
        exception.InvalidVolume(reason=f"volume {volume.id} is {record['status']}"),
    )
    snapshots = await op.db(records.count_snapshots, volume.id)
    _require(
        snapshots == 0,
        exception.VolumeIsBusy(
            volume_id=volume.id, reason=f"it has {snapshots} snapshot(s)"
        ),
    )
    volume = await op.begin("deleting")
    if op.args.get("unmanage_only"):
        await op.call(op.driver.unmanage, volume)
    else:
        await op.call(op.driver.delete_volume, volume)
    await op.finish(delete=True)


async def extend_volume(op: Operation) -> None:
    record, volume = await op.load_volume(op.resource_id)
    new_size = op.args["new_size"]
    _require(
        new_size > volume.size,
        exception.InvalidInput(
            reason=f"new_size {new_size} must exceed the current size {volume.size}"
        ),
    )
    online = bool(op.runtime.capability("online_extend_support", True))
    allowed = (
        ("available", "in-use", "extending") if online else ("available", "extending")
    )
    _require(
        record["status"] in allowed,
        exception.InvalidVolume(reason=f"volume {volume.id} is {record['status']}"),
    )
    volume = await op.begin("extending")
    await op.call(op.driver.extend_volume, volume, new_size)
    await op.finish(status=_settled_status(volume), size=new_size)


async def revert_to_snapshot(op: Operation) -> None:
    if not op.driver.supports(Feature.REVERT_TO_SNAPSHOT):
        raise exception.NotSupported(operation="revert_to_snapshot")
    record, volume = await op.load_volume(op.resource_id)
    snap_record, snapshot = await op.load_snapshot(op.args["snapshot"]["id"])
    _require(
        snapshot.volume_id == volume.id,
        exception.InvalidInput(
            reason=f"snapshot {snapshot.id} is not of volume {volume.id}"
        ),
    )
    _require(
        record["status"] in ("available", "reverting"),
        exception.InvalidVolume(reason=f"volume {volume.id} is {record['status']}"),
    )
    _require(
        snap_record["status"] == "available",
        exception.InvalidInput(
            reason=f"snapshot {snapshot.id} is {snap_record['status']}"
        ),
    )
    volume = await op.begin("reverting")
    await op.call(
        op.driver.revert_to_snapshot,
        op.context,
        volume,
        snapshot.replace(volume=volume),
    )
    await op.finish(status="available")


async def manage_existing(op: Operation) -> None:
    if not op.driver.supports(Feature.MANAGE_VOLUMES):
        raise exception.NotSupported(operation="manage_existing")
    ref = op.args["ref"]
    await refuse_managed(op, ref)
    volume: Volume = await op.begin("creating")
    size = int(await op.call(op.driver.manage_existing_get_size, volume, ref))
    volume = volume.replace(size=size)
    update = await op.call(op.driver.manage_existing, volume, ref)
    await op.finish(status="available", size=size, **op.model_update(update))


async def copy_volume_to_image(op: Operation) -> None:
    record, volume = await op.load_volume(op.resource_id)
    _require(
        record["status"] in ("available", "in-use"),
        exception.InvalidVolume(reason=f"volume {volume.id} is {record['status']}"),
    )
    images = op.runtime.images
    # The image remembers the operation that made it: redone after a crash
    # that came after the upload, this operation finds its own image done.
    origin = f"{volume.id} {op.seq} {op.request_id}"
    image_meta = dict(op.args["image_meta"], properties={image.ORIGIN: origin})
    try:
        found = await op.runtime.blocking(images.show, op.context, image_meta["id"])
    except exception.ImageNotFound:
        found = None
    if found is not None and found.get("properties", {}).get(image.ORIGIN) != origin:
        # Refused before the copy; the image service refuses a race too.
        raise exception.ImageExists(image_id=image_meta["id"])
    volume = await op.begin(None)
    if found is None:
        await op.call(
            op.driver.copy_volume_to_image, op.context, volume, images, image_meta
        )
    await op.finish()


async def rollback_manage_existing(op: Operation) -> None:
    """After a crash mid-manage: release whatever was adopted."""
    await release_adopted(op, op.driver.unmanage, "volume")
