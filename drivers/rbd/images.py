"""The images of the backend's pool, on librbd: opening them, making one
whole under a temporary name, snapshots and the clones that hang from them,
parents.

Errors of librbd pass through; the driver translates them at its boundary
(:mod:`.errors`), or a caller that knows what a missing image means there
catches ``rbd.ImageNotFound`` itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import names
from .cluster import Cluster

__all__ = ["GiB", "Images", "Parent", "order_of", "size_gb"]

LOG = logging.getLogger(__name__)

GiB = 1024**3
MiB = 1024**2


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
        """The image, open; ``rbd.ImageNotFound`` when there is none."""
        image = self.lib.Image(self.ioctx, name, read_only=read_only, image_id=image_id)
        try:
            yield image
        finally:
            image.close()

    def exists(self, name: str) -> bool:
        try:
            with self.open(name, read_only=True):
                return True
        except self.lib.ImageNotFound:
            return False

    def names(self) -> list[str]:
        return sorted(self.api.list(self.ioctx))

    def size(self, name: str) -> int | None:
        """The image's size in bytes, or None when there is no such image."""
        try:
            with self.open(name, read_only=True) as image:
                return int(image.size())
        except self.lib.ImageNotFound:
            return None

    def remove(self, name: str) -> bool:
        """Remove an image without snapshots; False when it was not there."""
        try:
            self.api.remove(self.ioctx, name)
        except self.lib.ImageNotFound:
            return False
        LOG.debug("Removed image %s/%s", self.pool, name)
        return True

    def rename(self, old: str, new: str) -> None:
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
        if replace:
            self.remove(names.volume(volume_id))
        self.rename(tmp, names.volume(volume_id))

    # -- snapshots and clones ---------------------------------------------------

    @staticmethod
    def snapshots(image: Any) -> dict[str, dict[str, Any]]:
        """The image's snapshots by name (``id``, ``size``...)."""
        return {snap["name"]: snap for snap in image.list_snaps()}

    @staticmethod
    def children(image: Any, snapshot: str) -> list[str]:
        """The images cloned from one snapshot of ``image``."""
        image.set_snap(snapshot)
        try:
            return [child["image"] for child in image.list_children2()]
        finally:
            image.set_snap(None)

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
        LOG.debug("Removed snapshot %s/%s@%s", self.pool, image.get_name(), snapshot)
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
