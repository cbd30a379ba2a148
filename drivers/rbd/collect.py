"""Removing what is kept only for clones, once no clone needs it.

A volume or snapshot that clones hang from cannot be removed without
breaking them, so deleting it renames it (``.deleted``) and keeps it. A
clone's own snapshot of its source (``.clone_snap``) is kept likewise. When a
clone goes (it is deleted, or flattened), the snapshot it hung from is looked
at again: a kept snapshot no clone hangs from is removed, then a kept image
left without snapshots, which may free its own parent, and so on up the
chain.

What a clone hung from is known only while the clone exists, and a removal
that a kill -9 cuts short leaves a clone that cannot be opened but still
holds its parent's snapshot. So before a clone is removed, its parent is
noted in the pool's RBD metadata,
``volworker.collect.<image id>.<snapshot id>.<clone id>``, and the note is
crossed out only once that clone is out of the pool and the parent was
looked at. A snapshot or image is also noted, without a clone, when it is
kept, and that note stays until it is gone. Every delete, every stats report
and every start of the driver looks at what is noted.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from . import names
from .images import Images, Parent

__all__ = ["Collector"]

LOG = logging.getLogger(__name__)

NOTE_PREFIX = "volworker.collect."
_NONE = "-"


def _key(image_id: str, snap_id: int | None, child_id: str | None) -> str:
    snap = _NONE if snap_id is None else str(snap_id)
    return f"{NOTE_PREFIX}{image_id}.{snap}.{child_id or _NONE}"


def _parse(key: str) -> tuple[str, int | None, str | None]:
    image_id, snap, child = (key.removeprefix(NOTE_PREFIX).split(".") + [_NONE] * 2)[:3]
    return (
        image_id,
        None if snap == _NONE else int(snap),
        None if child == _NONE else child,
    )


class Collector:
    """Removes the kept snapshots and images of one pool."""

    def __init__(self, images: Images) -> None:
        self.images = images
        self.lib = images.lib

    # -- notes ------------------------------------------------------------------

    def _note(
        self, image_id: str, snap_id: int | None, child_id: str | None = None
    ) -> str:
        key = _key(image_id, snap_id, child_id)
        self.images.api.pool_metadata_set(self.images.ioctx, key, str(time.time()))
        return key

    def _cross_out(self, key: str) -> None:
        # another thread may have settled the same note and crossed it out
        with contextlib.suppress(KeyError):
            self.images.api.pool_metadata_remove(self.images.ioctx, key)

    def notes(self) -> list[str]:
        return [
            key
            for key, _ in self.images.api.pool_metadata_list(self.images.ioctx)
            if key.startswith(NOTE_PREFIX)
        ]

    def pending(self) -> int:
        """Settle every note that can be (and empty the trash of what
        :meth:`Images.remove` put there); how many notes there were."""
        in_trash = self.images.empty_trash()
        keys = self.notes()
        if keys:
            in_pool = {
                image["id"] for image in self.images.api.list2(self.images.ioctx)
            }
            in_pool.update(in_trash)
            for key in keys:
                image_id, snap_id, child_id = _parse(key)
                if child_id not in in_pool:
                    self._settle(key, image_id, snap_id)
        return len(keys)

    def _settle(self, key: str, image_id: str, snap_id: int | None) -> None:
        """Look at a noted parent, and cross the note out once it is
        settled: the snapshot (or the kept image) is gone, or, for a note
        a clone left, that clone's parent was looked at after it went; what
        other clones still hang from the snapshot note it when they go."""
        try:
            gone = self.look(image_id, snap_id)
        except self.lib.Error as exc:
            LOG.warning("Could not collect %s yet: %s", key, exc)
            return
        if gone or _parse(key)[2] is not None:
            self._cross_out(key)

    def check(self, image_id: str, snap_id: int | None) -> None:
        """Look at a kept snapshot (or, without ``snap_id``, a kept image)
        now, and keep it noted until it is gone."""
        self._settle(self._note(image_id, snap_id), image_id, snap_id)

    # -- collecting -------------------------------------------------------------

    def note_parent(self, image: Any) -> tuple[Parent, str] | None:
        """Note what ``image`` hangs from, before the image goes (or is
        flattened); None for an image of its own or from another pool."""
        parent = self.images.parent(image)
        if parent is None or parent.pool != self.images.pool:
            return None
        with self.images.open(image_id=parent.image_id, read_only=True) as above:
            snap_id = above.snap_get_id(parent.snapshot)
        return parent, self._note(parent.image_id, snap_id, image.id())

    def release(self, noted: tuple[Parent, str] | None) -> None:
        """The image noted by :meth:`note_parent` is gone or flat: look at
        its parent and cross the note out (or leave it for later)."""
        if noted is not None:
            parent, key = noted
            self._settle(key, parent.image_id, _parse(key)[1])

    def look(self, image_id: str, snap_id: int | None) -> bool:
        """Remove the kept snapshot ``snap_id`` of the image if no clone
        hangs from it any more, then the image itself if it is kept and
        left without snapshots. False while a clone still hangs from it."""
        try:
            busy, idle = self._glance(image_id, snap_id)
        except self.lib.ImageNotFound:
            return True
        if busy or idle:
            return not busy
        try:
            with self.images.open(image_id=image_id) as image:
                self.images.finish_removals(image)
                snaps = self.images.snapshot_names(image)
                name = snaps.get(snap_id) if snap_id is not None else None
                if name is not None and names.is_kept_snapshot(name):
                    if not self.images.drop_snapshot(image, name):
                        return False
                    del snaps[snap_id]
                image_name = image.get_name()
                if snaps or not names.is_deferred(image_name):
                    return True
        except self.lib.ImageNotFound:
            return True
        self.remove_kept(image_name)
        return True

    def _glance(self, image_id: str, snap_id: int | None) -> tuple[bool, bool]:
        """Without opening the image for writing (which would watch it):
        whether clones still hang from the kept snapshot (busy), and whether
        there is nothing to collect at all (idle)."""
        with self.images.open(image_id=image_id, read_only=True) as image:
            name = self.images.snapshot_names(image).get(snap_id)
            if name is not None and names.is_kept_snapshot(name):
                image.set_snap_by_id(snap_id)
                return any(True for _ in image.list_children2()), False
            trash = self.lib.RBD_SNAP_NAMESPACE_TYPE_TRASH
            half_removed = any(
                snap.get("namespace") == trash for snap in image.list_snaps()
            )
            return False, not (half_removed or names.is_deferred(image.get_name()))

    def remove_kept(self, name: str) -> None:
        """Remove a kept image that has no snapshots left, and then collect
        what it hung from; noted for later when Ceph refuses now."""
        try:
            with self.images.open(name) as image:
                image_id = image.id()
                noted = self.note_parent(image)
        except self.lib.ImageNotFound:
            return  # removed by another thread looking at it too
        try:
            self.images.remove(name)
        except self.lib.Error as exc:
            LOG.info("Keeping %s/%s for now: %s", self.images.pool, name, exc)
            self._note(image_id, None)
            return
        LOG.info(
            "Removed %s/%s, kept until its last clone went", self.images.pool, name
        )
        self.release(noted)

    def sweep(self, image: Any) -> list[str]:
        """Remove every kept snapshot of ``image`` that no clone hangs from;
        the names of those that clones still hang from."""
        self.images.finish_removals(image)
        return [
            name
            for name in self.images.snapshots(image)
            if names.is_kept_snapshot(name)
            and not self.images.drop_snapshot(image, name)
        ]
