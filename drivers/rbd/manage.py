"""Manage and unmanage of the rbd driver (Feature.MANAGE_VOLUMES and
Feature.MANAGE_SNAPSHOTS); what is done to the images is in :mod:`.adoption`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from volworker import exception
from volworker.driver import ModelUpdate
from volworker.driver.manageable import paginate
from volworker.objects import Snapshot, Volume

from . import adoption, names
from .base import RBDDriverBase, backend_call, gib
from .connections import attached

__all__ = ["ManageMethods"]


class ManageMethods(RBDDriverBase):
    """Adopting images and snapshots of the pool, and letting go."""

    @backend_call
    def manage_existing(
        self, volume: Volume, existing_ref: dict[str, Any]
    ) -> ModelUpdate:
        volume_id = self._volume_id(volume)
        size = gib(volume.size, f"size of volume {volume_id}")
        adoption.adopt_volume(self.images, existing_ref, volume_id, size)
        return None

    @backend_call
    def manage_existing_get_size(
        self, volume: Volume, existing_ref: dict[str, Any]
    ) -> int:
        self._volume_id(volume)
        return adoption.reference_size(self.images, existing_ref)

    @backend_call
    def unmanage(self, volume: Volume) -> None:
        volume_id = self._volume_id(volume)
        try:
            with self.images.open(names.volume(volume_id), read_only=True) as image:
                hosts = attached(image)
        except self.images.lib.ImageNotFound:
            hosts = []
        if hosts:
            raise exception.VolumeIsBusy(
                volume_id=volume_id,
                reason=f"it is attached to {', '.join(hosts)}; cannot unmanage it",
            )
        adoption.release_volume(self.images, volume_id)

    @backend_call
    def get_manageable_volumes(
        self,
        cinder_volumes: Sequence[Volume],
        marker: str | None,
        limit: int | None,
        offset: int,
        sort_keys: Sequence[str],
        sort_dirs: Sequence[str],
    ) -> list[dict[str, Any]]:
        managed = {v.name: v.id for v in cinder_volumes}
        rows = adoption.manageable_volumes(self.images, managed)
        return paginate(rows, marker, limit, offset, sort_keys, sort_dirs)

    @backend_call
    def manage_existing_snapshot(
        self, snapshot: Snapshot, existing_ref: dict[str, Any]
    ) -> ModelUpdate:
        volume_id, snapshot_id = self._snapshot_ids(snapshot)
        adoption.adopt_snapshot(self.images, existing_ref, volume_id, snapshot_id)
        return None

    @backend_call
    def manage_existing_snapshot_get_size(
        self, snapshot: Snapshot, existing_ref: dict[str, Any]
    ) -> int:
        volume_id, _ = self._snapshot_ids(snapshot)
        return adoption.snapshot_reference_size(self.images, volume_id, existing_ref)

    @backend_call
    def unmanage_snapshot(self, snapshot: Snapshot) -> None:
        adoption.release_snapshot(self.images, *self._snapshot_ids(snapshot))

    @backend_call
    def get_manageable_snapshots(
        self,
        cinder_snapshots: Sequence[Snapshot],
        marker: str | None,
        limit: int | None,
        offset: int,
        sort_keys: Sequence[str],
        sort_dirs: Sequence[str],
    ) -> list[dict[str, Any]]:
        managed = {(s.volume.name, s.name): s.id for s in cinder_snapshots}
        rows = adoption.manageable_snapshots(self.images, managed)
        return paginate(rows, marker, limit, offset, sort_keys, sort_dirs)
