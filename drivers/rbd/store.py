"""Volumes and snapshots as RBD images and image snapshots, made safe to
redo: a journaled operation the worker redoes after a crash finds whatever
the first attempt left and finishes it.

- A new volume is made whole under ``volume-<id>.creating`` and renamed into
  place, so its name never holds half an image; a redo removes the half.
- A clone is a copy-on-write clone of a snapshot: of the user's snapshot, or
  of a snapshot of the source volume taken for it (``.clone_snap``). It is
  flattened at creation when ``rbd_max_clone_depth`` would be exceeded, or
  (from a snapshot) with ``rbd_flatten_volume_from_snapshot``.
- A volume or snapshot that clones still hang from is renamed ``.deleted``
  and removed with its last clone (:mod:`.collect`), so deleting a source
  never breaks a clone and costs no copy.
"""

from __future__ import annotations

import logging
from typing import Any

from volworker import exception

from . import names
from .collect import Collector
from .connections import attached, forget
from .images import Images

__all__ = ["Store"]

LOG = logging.getLogger(__name__)


class Store:
    """The operations of the driver on its pool."""

    def __init__(
        self,
        images: Images,
        collector: Collector,
        *,
        max_depth: int,
        flatten_from_snapshot: bool,
    ) -> None:
        self.images = images
        self.collector = collector
        self.lib = images.lib
        self.max_depth = max_depth
        self.flatten_from_snapshot = flatten_from_snapshot

    def whole(self, volume_id: str, size: int) -> bool:
        """Whether the volume's image is there already (a redo), of ``size``."""
        name = names.volume(volume_id)
        found = self.images.size(name)
        if found is None:
            return False
        if found != size:
            raise exception.VolumeBackendAPIException(
                data=f"{self.images.pool}/{name} already exists with {found} "
                f"bytes, not the {size} asked for"
            )
        LOG.info("%s/%s already exists; nothing to do", self.images.pool, name)
        return True

    def create(self, volume_id: str, size: int, multiattach: bool) -> None:
        """A new image: it reads as zeros, never as a deleted volume's data."""
        if self.whole(volume_id, size):
            return
        with self.images.building(volume_id) as tmp:
            self.images.create(tmp, size, self.images.features(multiattach))

    def clone(
        self,
        volume_id: str,
        size: int,
        multiattach: bool,
        source_id: str,
        snapshot_id: str | None = None,
    ) -> bool:
        """Make the volume a clone of the snapshot ``snapshot_id`` of
        ``source_id``, or (without one) of the source's data now; True when
        the clone was flattened."""
        source = names.volume(source_id)
        snap = names.snapshot(snapshot_id) if snapshot_id else None
        if self.whole(volume_id, size):
            self._tidy(source, snap or names.clone_snapshot(volume_id))
            return False
        with self.images.open(source) as src:
            snap, flatten = self._clone_source(src, volume_id, snap)
            noted = src.id(), src.snap_get_id(snap)
        try:
            with self.images.building(volume_id) as tmp:
                self.images.clone(source, snap, tmp, self.images.features(multiattach))
                with self.images.open(tmp) as image:
                    # librbd copies the source's metadata into a clone, and
                    # with it the source's attachments
                    forget(image, None)
                    if image.size() < size:
                        image.resize(size)
                    if flatten:
                        image.flatten()
        finally:
            if flatten or not self.images.exists(names.volume(volume_id)):
                # the snapshot taken for the clone is no use without it
                self.collector.check(*noted)
        return flatten

    def source_exists(self, source_id: str, snapshot_id: str | None) -> bool:
        """Whether the source volume (and snapshot) of a clone exist."""
        try:
            with self.images.open(names.volume(source_id), read_only=True) as src:
                return not snapshot_id or (
                    names.snapshot(snapshot_id) in self.images.snapshots(src)
                )
        except self.lib.ImageNotFound:
            return False

    def _clone_source(
        self, src: Any, volume_id: str, snap: str | None
    ) -> tuple[str, bool]:
        """The snapshot of ``src`` to clone (taken now for a clone of the
        volume) and whether the clone must be flattened."""
        snapshots = self.images.snapshots(src)
        flatten = self.images.depth(src) + 1 > self.max_depth
        if snap is None:
            snap = names.clone_snapshot(volume_id)
            self._snapshot(src, snap)
        elif snap not in snapshots:
            raise exception.SnapshotNotFound(snapshot_id=snap.removeprefix("snapshot-"))
        else:
            flatten = flatten or self.flatten_from_snapshot
        self.images.protect(src, snap)
        return snap, flatten

    def _tidy(self, source: str, snap: str) -> None:
        """After a redone clone: the snapshot taken for it may be unused."""
        try:
            with self.images.open(source, read_only=True) as src:
                ids = src.id(), src.snap_get_id(snap)
        except (self.lib.ImageNotFound, KeyError):
            return
        self.collector.check(*ids)

    def delete(self, volume_id: str) -> None:
        """Remove the volume, or keep it (renamed) for its clones."""
        name = names.volume(volume_id)
        self.images.remove(names.creating(volume_id))
        try:
            with self.images.open(name) as image:
                _refuse_attached(volume_id, image, "delete it")
                self.images.finish_removals(image)
                own = [
                    s
                    for s in self.images.snapshots(image)
                    if not names.is_kept_snapshot(s)
                ]
                own += list(self.images.group_snapshots(image))
                if own:
                    raise exception.VolumeIsBusy(
                        volume_id=volume_id,
                        reason=f"it has snapshots ({', '.join(own)})",
                    )
                self.images.leave_group(image)
                kept = self.collector.sweep(image)
                noted = None if kept else self.collector.note_parent(image)
        except self.lib.ImageNotFound:
            # a crash may have cut a removal short: librbd finishes it
            self.images.remove(name)
            self._finish_deferred(name)
            self.collector.pending()
            return
        if kept:
            self.images.rename(name, names.deleted(name))
            LOG.info(
                "Keeping %s/%s as %s for the clones of %s",
                self.images.pool,
                name,
                names.deleted(name),
                ", ".join(kept),
            )
            self._finish_deferred(name)
            return
        try:
            self.images.remove(name)
        except (self.lib.ImageBusy, self.lib.ImageHasSnapshots) as exc:
            raise exception.VolumeIsBusy(
                volume_id=volume_id, reason=f"Ceph refused to remove it: {exc}"
            ) from exc
        finally:
            self.collector.release(noted)
        self.collector.pending()

    def _finish_deferred(self, name: str) -> None:
        """The volume was renamed ``.deleted`` (maybe before a crash): remove
        it if its last clone went meanwhile, else note its snapshots."""
        kept = names.deleted(name)
        try:
            with self.images.open(kept) as image:
                image_id = image.id()
                held_names = self.collector.sweep(image)
                snapshots = self.images.snapshots(image)
                held = [snapshots[n]["id"] for n in held_names if n in snapshots]
        except self.lib.ImageNotFound:
            LOG.info("%s/%s is gone; nothing to delete", self.images.pool, name)
            return
        for snap_id in held:
            self.collector.check(image_id, snap_id)
        if not held:
            self.collector.check(image_id, None)

    def extend(self, volume_id: str, size: int) -> None:
        with self.images.open(names.volume(volume_id)) as image:
            if image.size() < size:
                image.resize(size)

    def create_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        snap = names.snapshot(snapshot_id)
        with self.images.open(names.volume(volume_id)) as image:
            self._snapshot(image, snap)

    def _snapshot(self, image: Any, snap: str) -> None:
        """Take ``snap`` unless a whole one is there already (a redo)."""
        if snap in self.images.snapshots(image):
            if self.images.snapshot_whole(image, snap):
                LOG.info("Snapshot %s exists already; nothing to do", snap)
                return
            LOG.info("Snapshot %s was left half made; taking it again", snap)
            self.images.drop_snapshot(image, snap)
        image.create_snap(snap)

    def delete_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        """Remove the snapshot, or keep it (renamed) for its clones."""
        snap = names.snapshot(snapshot_id)
        kept = names.deleted(snap)
        try:
            with self.images.open(names.volume(volume_id)) as image:
                self.images.finish_removals(image)
                snapshots = self.images.snapshots(image)
                if snap in snapshots:
                    if self.images.drop_snapshot(image, snap):
                        return
                    image.rename_snap(snap, kept)
                    LOG.info("Keeping snapshot %s as %s for its clones", snap, kept)
                elif kept not in snapshots:
                    LOG.info("Snapshot %s is gone; nothing to delete", snap)
                    return
                ids = image.id(), image.snap_get_id(kept)
        except self.lib.ImageNotFound:
            LOG.info("Volume %s is gone, and snapshot %s with it", volume_id, snap)
            return
        self.collector.check(*ids)

    def revert(self, volume_id: str, snapshot_id: str, size: int) -> None:
        """Roll the volume back to the snapshot, at the volume's size."""
        snap = names.snapshot(snapshot_id)
        with self.images.open(names.volume(volume_id)) as image:
            _refuse_attached(volume_id, image, "revert it")
            if snap not in self.images.snapshots(image):
                raise exception.SnapshotNotFound(snapshot_id=snapshot_id)
            image.rollback_to_snap(snap)
            # a rollback also restores the size the snapshot had
            if image.size() != size:
                image.resize(size)


def _refuse_attached(volume_id: str, image: Any, action: str) -> None:
    hosts = attached(image)
    if hosts:
        raise exception.VolumeIsBusy(
            volume_id=volume_id,
            reason=f"it is attached to {', '.join(hosts)}; cannot {action}",
        )
