"""Manage and unmanage of the file driver (Feature.MANAGE_VOLUMES and
Feature.MANAGE_SNAPSHOTS); what is done to the files is in :mod:`.adoption`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from volworker.driver import ModelUpdate
from volworker.driver.manageable import paginate
from volworker.objects import Snapshot, Volume

from . import adoption, listing, names, store
from .base import FileDriverBase, backend_call

__all__ = ["ManageMethods"]


class ManageMethods(FileDriverBase):
    """Adopting files of a pool as volumes and snapshots, and letting go."""

    @backend_call
    def manage_existing(
        self, volume: Volume, existing_ref: dict[str, Any]
    ) -> ModelUpdate:
        volume_id = names.check_uuid(volume.id, "volume")
        with self._root(volume) as root:
            adoption.adopt(root, existing_ref, names.volume_file(volume_id), self._busy)
            # A file smaller than the volume's size grows to it, so the
            # export shows the size the worker records; none ever shrinks.
            store.extend_volume(root, volume_id, volume.size * store.GiB, strict=False)
        return None

    @backend_call
    def manage_existing_get_size(
        self, volume: Volume, existing_ref: dict[str, Any]
    ) -> int:
        with self._root(volume) as root:
            return adoption.reference_size(root, existing_ref)

    @backend_call
    def unmanage(self, volume: Volume) -> None:
        volume_id = names.check_uuid(volume.id, "volume")
        self._not_exported(volume_id, "unmanage it")
        with self._root(volume) as root:
            adoption.release(root, names.volume_file(volume_id))

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
        rows = listing.manageable_volumes(self.pools, managed, self.exports.is_exported)
        return paginate(rows, marker, limit, offset, sort_keys, sort_dirs)

    @backend_call
    def manage_existing_snapshot(
        self, snapshot: Snapshot, existing_ref: dict[str, Any]
    ) -> ModelUpdate:
        volume_id, snapshot_id = self._snapshot_ids(snapshot)
        with self._root(snapshot.volume) as root, store.open_volume(root, volume_id):
            pass
        with self._snapshots_of(snapshot) as snaps:
            adoption.adopt(snaps, existing_ref, names.snapshot_file(snapshot_id))
        return None

    @backend_call
    def manage_existing_snapshot_get_size(
        self, snapshot: Snapshot, existing_ref: dict[str, Any]
    ) -> int:
        with self._snapshots_of(snapshot) as snaps:
            return adoption.reference_size(snaps, existing_ref)

    @backend_call
    def unmanage_snapshot(self, snapshot: Snapshot) -> None:
        _, snapshot_id = self._snapshot_ids(snapshot)
        with self._snapshots_of(snapshot) as snaps:
            adoption.release(snaps, names.snapshot_file(snapshot_id))

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
        rows = listing.manageable_snapshots(self.pools, managed)
        return paginate(rows, marker, limit, offset, sort_keys, sort_dirs)
