"""Snapshot operations: create, delete (or unmanage), manage."""

from __future__ import annotations

from volworker import exception
from volworker.driver import Feature
from volworker.manager.operation import Operation, release_adopted
from volworker.manager.references import refuse_managed
from volworker.objects import Snapshot

__all__ = [
    "create_snapshot",
    "delete_snapshot",
    "manage_existing_snapshot",
    "rollback_manage_existing_snapshot",
]


SNAPSHOTTABLE = ("available", "in-use")
DELETABLE = frozenset({"available", "error", "error_deleting", "deleting", "creating"})


async def _check_volume(op: Operation, volume_id: str) -> None:
    record, _ = await op.load_volume(volume_id)
    if record["status"] not in SNAPSHOTTABLE:
        raise exception.InvalidVolume(
            reason=f"volume {volume_id} is {record['status']}, cannot snapshot it"
        )


async def create_snapshot(op: Operation) -> None:
    await _check_volume(op, op.args["snapshot"]["volume_id"])
    snapshot: Snapshot = await op.begin("creating")
    # The size is the volume's now, which an extend queued before the
    # snapshot may have changed since the snapshot was accepted.
    snapshot = snapshot.replace(volume_size=snapshot.volume.size)
    update = await op.call(op.driver.create_snapshot, snapshot)
    await op.finish(
        status="available",
        size=snapshot.volume.size,
        **op.model_update(update, ("provider_location",)),
    )


async def delete_snapshot(op: Operation) -> None:
    record, snapshot = await op.load_snapshot(op.resource_id)
    if snapshot.volume_id != op.args["snapshot"]["volume_id"]:
        raise exception.InvalidInput(
            reason=f"snapshot {snapshot.id} belongs to volume {snapshot.volume_id}, "
            f"not {op.args['snapshot']['volume_id']}"
        )
    if record["status"] not in DELETABLE:
        raise exception.InvalidVolume(
            reason=f"snapshot {snapshot.id} is {record['status']}"
        )
    snapshot = await op.begin("deleting")
    if op.args.get("unmanage_only"):
        await op.call(op.driver.unmanage_snapshot, snapshot)
    else:
        await op.call(op.driver.delete_snapshot, snapshot)
    await op.finish(delete=True)


async def manage_existing_snapshot(op: Operation) -> None:
    if not op.driver.supports(Feature.MANAGE_SNAPSHOTS):
        raise exception.NotSupported(operation="manage_existing_snapshot")
    await _check_volume(op, op.args["snapshot"]["volume_id"])
    ref = op.args["ref"]
    await refuse_managed(op, ref)
    snapshot: Snapshot = await op.begin("creating")
    size = int(
        await op.call(op.driver.manage_existing_snapshot_get_size, snapshot, ref)
    )
    update = await op.call(op.driver.manage_existing_snapshot, snapshot, ref)
    await op.finish(
        status="available",
        size=size,
        **op.model_update(update, ("provider_location",)),
    )


async def rollback_manage_existing_snapshot(op: Operation) -> None:
    """After a crash mid-manage: release whatever was adopted."""
    await release_adopted(op, op.driver.unmanage_snapshot, "snapshot")
