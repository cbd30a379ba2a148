"""Removing what is kept only for clones, once no clone needs it.

A volume or snapshot that clones hang from cannot be removed without
breaking them, so deleting it renames it (``.deleted``) and keeps it. A
clone's own snapshot of its source (``.clone_snap``) is kept likewise. When a
clone goes (it is deleted, or flattened), the snapshot it hung from is looked
at again: a kept snapshot no clone hangs from is removed, then a kept image
left without snapshots, which may free its own parent, and so on up the
chain.

What a clone hung from is known only while the clone exists. So before the
clone is removed, its parent is noted in the pool's RBD metadata
(``volworker.collect.<image id>.<snapshot id>``) and the note is crossed out
once the parent was looked at: after a kill -9 in between, the next delete or
the next start of the driver looks again. A kept image whose removal fails
(a client has it open) is noted the same way.
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
_NO_SNAPSHOT = "-"


class Collector:
    """Removes the kept snapshots and images of one pool."""

    def __init__(self, images: Images) -> None:
        self.images = images
        self.lib = images.lib

    # -- notes ------------------------------------------------------------------

    def _note(self, image_id: str, snap_id: int | None) -> str:
        key = f"{NOTE_PREFIX}{image_id}.{_NO_SNAPSHOT if snap_id is None else snap_id}"
        self.images.api.pool_metadata_set(self.images.ioctx, key, str(time.time()))
        return key

    def _cross_out(self, key: str) -> None:
        # another thread may have looked at the same parent and crossed out
        with contextlib.suppress(KeyError):
            self.images.api.pool_metadata_remove(self.images.ioctx, key)

    def notes(self) -> list[str]:
        return [
            key
            for key, _ in self.images.api.pool_metadata_list(self.images.ioctx)
            if key.startswith(NOTE_PREFIX)
        ]

    def pending(self) -> int:
        """Look at every noted parent again; how many notes there were."""
        keys = self.notes()
        for key in keys:
            image_id, _, snap = key.removeprefix(NOTE_PREFIX).partition(".")
            try:
                self.look(image_id, None if snap == _NO_SNAPSHOT else int(snap))
            except (self.lib.Error, ValueError) as exc:
                LOG.warning("Could not collect %s yet: %s", key, exc)
                continue
            self._cross_out(key)
        return len(keys)

    # -- collecting -------------------------------------------------------------

    def note_parent(self, image: Any) -> tuple[Parent, str] | None:
        """Note what ``image`` hangs from, before the image goes (or is
        flattened); None for an image of its own or from another pool."""
        parent = self.images.parent(image)
        if parent is None or parent.pool != self.images.pool:
            return None
        with self.images.open(image_id=parent.image_id, read_only=True) as above:
            snap_id = above.snap_get_id(parent.snapshot)
        return parent, self._note(parent.image_id, snap_id)

    def release(self, noted: tuple[Parent, str] | None) -> None:
        """The image noted by :meth:`note_parent` is gone or flat: look at
        its parent and cross the note out."""
        if noted is None:
            return
        parent, key = noted
        _, _, snap = key.removeprefix(NOTE_PREFIX).partition(".")
        self.look(parent.image_id, int(snap))
        self._cross_out(key)

    def look(self, image_id: str, snap_id: int | None) -> None:
        """Remove the kept snapshot ``snap_id`` of the image if no clone
        hangs from it any more, then the image itself if it is kept and
        left without snapshots."""
        try:
            with self.images.open(image_id=image_id) as image:
                snaps = {s["id"]: s["name"] for s in image.list_snaps()}
                name = snaps.get(snap_id) if snap_id is not None else None
                if name is not None and names.is_kept_snapshot(name):
                    if not self.images.drop_snapshot(image, name):
                        return
                    del snaps[snap_id]
                image_name = image.get_name()
                if snaps or not names.is_deferred(image_name):
                    return
        except self.lib.ImageNotFound:
            return
        self.remove_kept(image_name)

    def remove_kept(self, name: str) -> None:
        """Remove a kept image that has no snapshots left, and then collect
        what it hung from."""
        try:
            with self.images.open(name) as image:
                image_id = image.id()
                noted = self.note_parent(image)
        except self.lib.ImageNotFound:
            return  # removed by another thread looking at it too
        try:
            self.images.remove(name)
        except (self.lib.ImageBusy, self.lib.ImageHasSnapshots) as exc:
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
        return [
            name
            for name in self.images.snapshots(image)
            if names.is_kept_snapshot(name)
            and not self.images.drop_snapshot(image, name)
        ]
