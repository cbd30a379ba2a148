"""The images of the backend's pool, on librbd: opening them, making one
whole under a temporary name, snapshots and the clones that hang from them,
parents.

Errors of librbd pass through; the driver translates them at its boundary
(:mod:`.base`), or a caller that knows what a missing image means there
catches ``rbd.ImageNotFound`` itself.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import names
from .cluster import Cluster
from .directory import drop_stale_id, listed_id, unlist

__all__ = ["GiB", "Images", "Parent", "order_of", "size_gb"]

LOG = logging.getLogger(__name__)

GiB = 1024**3
MiB = 1024**2
#: seconds to wait for the watch of a dead client to expire (Ceph's
#: osd_client_watch_timeout is 30 s by default)
WATCH_GRACE = 40.0
#: pool metadata that names an image the driver moved to the trash
TRASH_NOTE = "volworker.trash."
#: errno of librbd for an image another client has open, or holds the lock of
_IN_USE = frozenset({errno.EBUSY, errno.EROFS, errno.ESTALE})


def size_gb(size: int) -> int:
    """Bytes in GiB, rounded up."""
    return math.ceil(size / GiB)


def order_of(chunk_mib: int) -> int:
    """The RBD object order (log2 of the object size) of a chunk size."""
    order = int(math.log2(chunk_mib * MiB))
    if 2**order != chunk_mib * MiB:
        raise ValueError(f"rbd_store_chunk_size {chunk_mib} is not a power of two")
    return order


@dataclass(frozen=True)
class Parent:
    """What a clone hangs from: a snapshot of an image, by the image's id
    (which a rename does not change)."""

    pool: str
    image_id: str
    snapshot: str


class Images:
    """The images of one pool."""

    def __init__(self, cluster: Cluster, order: int) -> None:
        self.cluster = cluster
        self.order = order
        self.lib = cluster.rbd
        self.api = cluster.rbd.RBD()
        lib = self.lib
        #: the features a multiattach image must not have
        self.exclusive_features = (
            lib.RBD_FEATURE_EXCLUSIVE_LOCK
            | lib.RBD_FEATURE_OBJECT_MAP
            | lib.RBD_FEATURE_FAST_DIFF
            | lib.RBD_FEATURE_JOURNALING
        )

    @property
    def pool(self) -> str:
        return self.cluster.settings.pool

    @property
    def ioctx(self) -> Any:
        return self.cluster.ioctx()

    @contextmanager
    def open(
        self,
        name: str | None = None,
        *,
        image_id: str | None = None,
        read_only: bool = False,
    ) -> Iterator[Any]:
        """The image, open; ``rbd.ImageNotFound`` when there is none (or the
        name is not the image's in the directory)."""
        if name is not None and not self.exists(name):
            raise self.lib.ImageNotFound(
                f"no image {self.pool}/{name}", errno=errno.ENOENT
            )
        image = self.lib.Image(self.ioctx, name, read_only=read_only, image_id=image_id)
        try:
            yield image
        finally:
            image.close()

    def exists(self, name: str) -> bool:
        return listed_id(self.cluster.rados, self.ioctx, name) is not None

    def names(self) -> list[str]:
        return sorted(self.api.list(self.ioctx))

    def size(self, name: str) -> int | None:
        """The image's size in bytes, or None when there is no such image."""
        try:
            with self.open(name, read_only=True) as image:
                return int(image.size())
        except self.lib.ImageNotFound:
            return None

    def remove(self, name: str, patience: float = WATCH_GRACE) -> bool:
        """Remove an image without snapshots; False when it was not there.

        Ceph refuses to remove an image a client has open (it watches it).
        A client that died keeps its watch until the OSDs time it out
        (osd_client_watch_timeout, 30 s by default), and a worker killed
        with -9 is such a client of the images it had open; so a busy image
        is tried again for ``patience`` seconds. An OSD may also keep the
        watch of a client that is blocklisted, so dead for sure, for longer;
        an image only such clients watch goes to the RBD trash, out of the
        pool's listing, and :meth:`empty_trash` removes it later.
        """
        # an id object the directory does not back must not lead librbd to
        # the image it was renamed from; a removal cut short, which librbd
        # lists from its trash under the old name, is finished by name
        if not self.exists(name):
            drop_stale_id(self.cluster.rados, self.ioctx, name, listed=False)
        deadline = time.monotonic() + patience
        while True:
            try:
                self.api.remove(self.ioctx, name)
                break
            except self.lib.ImageNotFound:
                # listed, but nothing left to open: finish the removal
                return unlist(self.cluster.rados, self.ioctx, name)
            except self.lib.Error as exc:
                if exc.errno not in _IN_USE:
                    raise
                if time.monotonic() >= deadline:
                    if not self._watched_by_the_dead(name):
                        raise
                    self._to_trash(name)
                    LOG.warning(
                        "Moved %s/%s to the trash: only blocklisted clients "
                        "still watch it",
                        self.pool,
                        name,
                    )
                    return True
                time.sleep(0.5)
        LOG.info("Removed image %s/%s", self.pool, name)
        return True

    def _watched_by_the_dead(self, name: str) -> bool:
        with self.open(name, read_only=True) as image:
            watchers = {w["addr"] for w in image.watchers_list()}
        blocklist = self.cluster.command("osd dump").get("blocklist", {})
        return bool(watchers) and watchers <= set(blocklist)

    def _to_trash(self, name: str) -> None:
        """Move an image to the trash, noted in the pool's metadata as the
        driver's to remove: the trash may hold an operator's images too."""
        with self.open(name, read_only=True) as image:
            image_id = image.id()
        self.api.pool_metadata_set(self.ioctx, TRASH_NOTE + image_id, name)
        self.api.trash_move(self.ioctx, name, 0)

    def empty_trash(self) -> list[str]:
        """Remove what :meth:`remove` put in the trash, where Ceph lets it
        now; the ids of the images still in the trash."""
        left = []
        for key, name in list(self.api.pool_metadata_list(self.ioctx)):
            if not key.startswith(TRASH_NOTE):
                continue
            image_id = key.removeprefix(TRASH_NOTE)
            try:
                self.api.trash_remove(self.ioctx, image_id, force=True)
            except self.lib.ImageNotFound:
                pass
            except self.lib.Error as exc:
                LOG.info("%s stays in the trash for now: %s", name, exc)
                left.append(image_id)
                continue
            else:
                LOG.info("Removed %s/%s from the trash", self.pool, name)
            self.api.pool_metadata_remove(self.ioctx, key)
        return left

    def rename(self, old: str, new: str) -> None:
        drop_stale_id(self.cluster.rados, self.ioctx, new)
        self.api.rename(self.ioctx, old, new)
        LOG.debug("Renamed image %s/%s to %s", self.pool, old, new)

    def default_features(self) -> int:
        value = self.cluster.conf_get("rbd_default_features")
        try:
            return int(value)
        except ValueError:
            return int(self.api.features_from_string(value))

    def features(self, multiattach: bool) -> int | None:
        """None (the cluster's default features) unless the image is for a
        multiattach volume: then without the exclusive lock and what needs
        it, which several writers would pass back and forth."""
        if not multiattach:
            return None
        return self.default_features() & ~self.exclusive_features

    @contextmanager
    def building(self, volume_id: str, replace: bool = False) -> Iterator[str]:
        """The temporary name to make the volume under; renamed to the
        volume's name when the block ends (in place of the volume's image
        with ``replace``), removed when it raises.

        An image left under that name by a crash is removed first: it may
        be half made.
        """
        tmp = names.creating(volume_id)
        if self.remove(tmp):
            LOG.info("Removed %s/%s, left half made", self.pool, tmp)
        try:
            yield tmp
        except BaseException:
            try:
                self.remove(tmp)
            except Exception as exc:
                LOG.warning("Could not remove %s/%s: %s", self.pool, tmp, exc)
            raise
        name = names.volume(volume_id)
        group = None
        if replace:
            # gone already when a crash came between its removal and the
            # rename; the driver puts the volume back in its group then
            with contextlib.suppress(self.lib.ImageNotFound), self.open(name) as old:
                group = self.leave_group(old)
            self.remove(name)
        self.rename(tmp, name)
        if group:
            # the new image takes the old one's place in its group too
            with self.lib.Group(self.ioctx, group) as rbd_group:
                rbd_group.add_image(self.ioctx, name)

    # -- snapshots and clones ---------------------------------------------------

    def snapshots(self, image: Any) -> dict[str, dict[str, Any]]:
        """The image's snapshots by name (``id``, ``size``...)."""
        user = self.lib.RBD_SNAP_NAMESPACE_TYPE_USER
        return {
            snap["name"]: snap
            for snap in image.list_snaps()
            if snap.get("namespace", user) == user
        }

    def group_snapshots(self, image: Any) -> dict[str, int]:
        """The image's snapshots taken by RBD group snapshots: the group
        snapshot's name to the image's snapshot id."""
        group = self.lib.RBD_SNAP_NAMESPACE_TYPE_GROUP
        return {
            snap["group"]["snap_name"]: snap["id"]
            for snap in image.list_snaps()
            if snap.get("namespace") == group
        }

    def leave_group(self, image: Any) -> str | None:
        """Take the image out of its RBD group (librbd refuses to remove an
        image that is in one); the group's name, or None."""
        spec = image.group()
        if not spec["name"]:
            return None
        if spec["pool"] != self.ioctx.get_pool_id():
            raise self.lib.InvalidArgument(
                f"{image.get_name()} is in group {spec['name']} of another pool"
            )
        with self.lib.Group(self.ioctx, spec["name"]) as group:
            group.remove_image(self.ioctx, image.get_name())
        LOG.info("Took %s/%s out of its group", self.pool, image.get_name())
        return str(spec["name"])

    def finish_removals(self, image: Any) -> None:
        """Remove the snapshots whose removal a crash interrupted: librbd
        first moves a snapshot it removes into a trash namespace, where a
        redo looking for it by name would not find it."""
        trash = self.lib.RBD_SNAP_NAMESPACE_TYPE_TRASH
        for snap in image.list_snaps():
            if snap.get("namespace") == trash:
                try:
                    image.remove_snap_by_id(snap["id"])
                except self.lib.ImageBusy:
                    continue  # a clone (of format 2) still hangs from it
                LOG.info(
                    "Finished removing snapshot %s of %s/%s",
                    snap.get("trash", {}).get("original_name", snap["id"]),
                    self.pool,
                    image.get_name(),
                )

    def snapshot_whole(self, image: Any, snapshot: str) -> bool:
        """Whether a snapshot can be read: one whose creation a crash cut
        short exists in the image's header without its object map."""
        try:
            with self.lib.Image(
                self.ioctx, image_id=image.id(), snapshot=snapshot, read_only=True
            ):
                return True
        except self.lib.ImageNotFound:
            return False

    def snapshot_names(self, image: Any) -> dict[int | None, str]:
        """The image's snapshots' names by id."""
        return {snap["id"]: name for name, snap in self.snapshots(image).items()}

    def protect(self, image: Any, snapshot: str) -> None:
        """Protect a snapshot (clones of format 1 need it); idempotent."""
        if not image.is_protected_snap(snapshot):
            image.protect_snap(snapshot)

    def drop_snapshot(self, image: Any, snapshot: str) -> bool:
        """Remove a snapshot unless clones hang from it; False when they do."""
        if image.is_protected_snap(snapshot):
            try:
                image.unprotect_snap(snapshot)
            except self.lib.ImageBusy:
                return False
        image.remove_snap(snapshot)
        LOG.info("Removed snapshot %s/%s@%s", self.pool, image.get_name(), snapshot)
        return True

    def parent(self, image: Any) -> Parent | None:
        """What ``image`` is a clone of, or None for an image of its own."""
        try:
            spec = image.get_parent_image_spec()
            image_id = image.parent_id()
        except self.lib.ImageNotFound:
            return None
        return Parent(spec["pool_name"], image_id, spec["snap_name"])

    def depth(self, image: Any) -> int:
        """How many clones deep ``image`` is: 0 for an image of its own."""
        found = 0
        parent = self.parent(image)
        while parent is not None:
            found += 1
            ioctx = self.cluster.ioctx(parent.pool)
            with self.lib.Image(
                ioctx, image_id=parent.image_id, read_only=True
            ) as above:
                parent = self.parent(above)
        return found

    def create(self, name: str, size: int, features: int | None) -> None:
        self.api.create(
            self.ioctx,
            name,
            size,
            order=self.order,
            old_format=False,
            features=features,
        )

    def clone(
        self, source: str, snapshot: str, target: str, features: int | None
    ) -> None:
        self.api.clone(
            self.ioctx,
            source,
            snapshot,
            self.ioctx,
            target,
            features=features,
            order=self.order,
        )
