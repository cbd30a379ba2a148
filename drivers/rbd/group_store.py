"""Groups as RBD groups of the pool, and group snapshots as RBD group
snapshots, made safe to redo.

A group is the RBD group ``group-<id>``, holding its volumes' images. A group
snapshot is one RBD group snapshot, ``group-snapshot-<id>``: librbd asks the
members' clients to quiesce, takes the exclusive lock of every member image
(so no client writes to any of them) and snapshots them all before it lets
go. The member snapshots are therefore of one moment for the whole group:
crash-consistent across it. librbd keeps them in the group namespace of each
image, out of the users' sight.

An image without the exclusive lock (a multiattach volume's) cannot be held
still that way; a group that asks for consistency is refused while such a
member is attached.

Ceph 16's librbd clones user snapshots only, so a volume made from a member
of a group snapshot is a (sparse, flat) copy of it rather than a clone.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from volworker import exception

from . import names
from .connections import attached, forget
from .images import Images

__all__ = ["GroupStore"]

LOG = logging.getLogger(__name__)


class GroupStore:
    """The RBD groups of one pool."""

    def __init__(self, images: Images) -> None:
        self.images = images
        self.lib = images.lib

    def exists(self, group_id: str) -> bool:
        return names.group(group_id) in self.images.api.group_list(self.images.ioctx)

    @contextlib.contextmanager
    def _open(self, group_id: str) -> Iterator[Any]:
        with self.lib.Group(self.images.ioctx, names.group(group_id)) as group:
            yield group

    def create(self, group_id: str) -> None:
        """Make the group unless it is there (a redo, or a member added)."""
        if self.exists(group_id):
            return
        # another thread of a cluster member may make it meanwhile
        with contextlib.suppress(self.lib.ObjectExists):
            self.images.api.group_create(self.images.ioctx, names.group(group_id))
            LOG.info("Made RBD group %s/%s", self.images.pool, names.group(group_id))

    def delete(self, group_id: str) -> None:
        """Remove the group, with its group snapshots; its images stay."""
        self.images.api.group_remove(self.images.ioctx, names.group(group_id))

    def images_of(self, group_id: str) -> dict[str, bool]:
        """The names of the images in the group, each with whether it is
        wholly in it (not left half added or half removed by a crash)."""
        if not self.exists(group_id):
            return {}
        with self._open(group_id) as group:
            listed = list(group.list_images())
        whole = self.lib.RBD_GROUP_IMAGE_STATE_ATTACHED
        return {i["name"]: i["state"] == whole for i in listed}

    def add(self, group_id: str, volume_ids: Iterable[str]) -> None:
        """Put the volumes' images in the group (made if missing)."""
        self.create(group_id)
        own = names.group(group_id)
        with self._open(group_id) as group:
            for volume_id in volume_ids:
                name = names.volume(volume_id)
                try:
                    with self.images.open(name, read_only=True) as image:
                        other = image.group()["name"]
                except self.lib.ImageNotFound as exc:
                    raise exception.VolumeNotFound(volume_id=volume_id) from exc
                if other and other != own:
                    raise exception.InvalidInput(
                        reason=f"volume {volume_id} is in RBD group {other}"
                    )
                # adding a member again (a redo) is no error to librbd
                group.add_image(self.images.ioctx, name)

    def remove(self, group_id: str, volume_ids: Iterable[str]) -> None:
        """Take the volumes' images out of the group; gone ones are out."""
        self._drop(group_id, [names.volume(v) for v in volume_ids])

    def _drop(self, group_id: str, images: Iterable[str]) -> None:
        if not self.exists(group_id):
            return
        with self._open(group_id) as group:
            for name in images:
                with contextlib.suppress(self.lib.ObjectNotFound):
                    group.remove_image(self.images.ioctx, name)

    def match(self, group_id: str, volume_ids: Iterable[str]) -> None:
        """Make the group hold exactly these volumes: the worker's record
        of the group is what counts."""
        wanted = sorted(set(volume_ids))
        names_wanted = {names.volume(v) for v in wanted}
        # one left half in is taken out and put back
        self._drop(
            group_id,
            [
                name
                for name, whole in self.images_of(group_id).items()
                if not whole or name not in names_wanted
            ],
        )
        self.add(group_id, wanted)

    # -- group snapshots --------------------------------------------------------

    def snapshot(
        self, group_id: str, group_snapshot_id: str, volume_ids: list[str]
    ) -> None:
        """One RBD group snapshot of exactly ``volume_ids``; a complete one
        left by an earlier attempt is kept, a half made one taken again."""
        self.match(group_id, volume_ids)
        snap = names.group_snapshot(group_snapshot_id)
        with self._open(group_id) as group:
            states = {s["name"]: s["state"] for s in group.list_snaps()}
            if states.get(snap) == self.lib.RBD_GROUP_SNAP_STATE_COMPLETE:
                LOG.info("Group snapshot %s exists already; nothing to do", snap)
                return
            if snap in states:
                LOG.info("Group snapshot %s was left half made; taking it again", snap)
                group.remove_snap(snap)
            try:
                # a client whose quiesce hook fails still cannot write while
                # librbd holds every member's lock: the snapshot is
                # crash-consistent either way
                group.create_snap(snap, self.lib.RBD_SNAP_CREATE_IGNORE_QUIESCE_ERROR)
            except BaseException:
                with contextlib.suppress(self.lib.Error):
                    group.remove_snap(snap)
                raise
        LOG.info("Took group snapshot %s of %d volumes", snap, len(volume_ids))

    def lockless_attached(self, volume_ids: Iterable[str]) -> list[str]:
        """The volumes among ``volume_ids`` that a client may be writing to
        without the exclusive lock: a group snapshot cannot hold them still."""
        found = []
        lock = self.lib.RBD_FEATURE_EXCLUSIVE_LOCK
        for volume_id in volume_ids:
            with self.images.open(names.volume(volume_id), read_only=True) as image:
                if not image.features() & lock and attached(image):
                    found.append(volume_id)
        return found

    def remove_snapshot(self, group_id: str, group_snapshot_id: str) -> None:
        snap = names.group_snapshot(group_snapshot_id)
        if not self.exists(group_id):
            LOG.info("Group %s is gone, and snapshot %s with it", group_id, snap)
            return
        with self._open(group_id) as group:
            try:
                group.remove_snap(snap)
            except self.lib.ObjectNotFound:
                LOG.info("Group snapshot %s is gone; nothing to delete", snap)
                return
        LOG.info("Removed group snapshot %s", snap)

    def member_snapshot(
        self, volume_id: str, group_snapshot_id: str
    ) -> tuple[str, int] | None:
        """The image and snapshot id of the volume's member of the group
        snapshot, or None when the group snapshot has none of it."""
        name = names.volume(volume_id)
        snap = names.group_snapshot(group_snapshot_id)
        try:
            with self.images.open(name, read_only=True) as image:
                snap_id = self.images.group_snapshots(image).get(snap)
        except self.lib.ImageNotFound:
            return None
        return None if snap_id is None else (name, snap_id)

    def copy(
        self,
        volume_id: str,
        size: int,
        features: int,
        source: tuple[str, int],
    ) -> None:
        """Make the volume a copy of the member snapshot ``source`` (image
        name, snapshot id) of a group snapshot, at least ``size`` bytes."""
        name, snap_id = source
        with self.images.open(name, read_only=True) as src:
            src.set_snap_by_id(snap_id)
            with self.images.building(volume_id) as tmp:
                src.copy(
                    self.images.ioctx, tmp, features=features, order=self.images.order
                )
                with self.images.open(tmp) as image:
                    # librbd copies the metadata, and the attachments with it
                    forget(image, None)
                    if image.size() < size:
                        image.resize(size)
