"""Groups on the rbd driver (Feature.GROUPS, CONSISTENT_GROUP_SNAPSHOT):
RBD groups, and one RBD group snapshot per group snapshot, which is of one
moment for every member (see :mod:`.group_store`).

Every method can be redone: the group follows the worker's record of its
members, a group snapshot found complete is kept, and a volume already made
whole is left as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from volworker import exception
from volworker.context import RequestContext
from volworker.driver import ModelUpdate, ModelUpdates
from volworker.driver.groups import GenericGroups
from volworker.objects import Group, GroupSnapshot, Snapshot, Volume

from .base import RBDDriverBase, backend_call, gib, multiattach
from .group_store import GroupStore

__all__ = ["RBDGroups"]

LOG = logging.getLogger(__name__)


class RBDGroups(RBDDriverBase):
    """The rbd driver's group methods."""

    @property
    def groups(self) -> GroupStore:
        return GroupStore(self.images)

    def _ids(self, volumes: Sequence[Volume] | None) -> list[str]:
        return [self._volume_id(v) for v in volumes or ()]

    @backend_call
    def create_group(self, context: RequestContext, group: Group) -> ModelUpdate:
        self.groups.add(group.id, self._ids(group.volumes))
        return None

    @backend_call
    def delete_group(
        self, context: RequestContext, group: Group, volumes: list[Volume]
    ) -> tuple[ModelUpdate, ModelUpdates]:
        ids = self._ids(volumes)
        # The worker deletes a group only when its members have no
        # snapshots left; a group snapshot still in the group is one whose
        # member records went one by one, and goes with the group.
        self.groups.delete(group.id)
        for volume_id in ids:
            self.store.delete(volume_id)
        return None, None

    @backend_call
    def update_group(
        self,
        context: RequestContext,
        group: Group,
        add_volumes: list[Volume] | None = None,
        remove_volumes: list[Volume] | None = None,
    ) -> tuple[ModelUpdate, ModelUpdates, ModelUpdates]:
        self.groups.remove(group.id, self._ids(remove_volumes))
        self.groups.add(group.id, self._ids(add_volumes))
        return None, None, None

    @backend_call
    def create_group_from_src(
        self,
        context: RequestContext,
        group: Group,
        volumes: list[Volume],
        group_snapshot: GroupSnapshot | None = None,
        snapshots: list[Snapshot] | None = None,
        source_group: Group | None = None,
        source_vols: list[Volume] | None = None,
    ) -> tuple[ModelUpdate, ModelUpdates]:
        # Each new volume is made as create_volume_from_snapshot or
        # create_cloned_volume makes it (undone when one fails), then the
        # group takes them all.
        update, made = GenericGroups(self).create_group_from_src(
            context,
            group,
            volumes,
            group_snapshot,
            snapshots,
            source_group,
            source_vols,
        )
        try:
            self.groups.add(group.id, self._ids(volumes))
        except BaseException:
            for volume in volumes:
                try:
                    self.store.delete(volume.id)
                except Exception as exc:
                    # the failure that brought us here is the one to report
                    LOG.warning("Could not remove %s again: %s", volume.name, exc)
            raise
        return update, made

    @backend_call
    def create_group_snapshot(
        self,
        context: RequestContext,
        group_snapshot: GroupSnapshot,
        snapshots: list[Snapshot],
    ) -> tuple[ModelUpdate, ModelUpdates]:
        ids = [self._snapshot_ids(s)[0] for s in snapshots]
        if group_snapshot.group.consistent:
            lockless = self.groups.lockless_attached(ids)
            if lockless:
                raise exception.VolumeIsBusy(
                    volume_id=lockless[0],
                    reason="a consistent group snapshot needs every member "
                    "detached or with the exclusive lock; attached without it: "
                    + ", ".join(lockless),
                )
        self.groups.snapshot(group_snapshot.group_id, group_snapshot.id, ids)
        return None, None

    @backend_call
    def delete_group_snapshot(
        self,
        context: RequestContext,
        group_snapshot: GroupSnapshot,
        snapshots: list[Snapshot],
    ) -> tuple[ModelUpdate, ModelUpdates]:
        self.groups.remove_snapshot(group_snapshot.group_id, group_snapshot.id)
        # members taken one by one (before the driver took group snapshots
        # natively, or by the worker's generic groups) are image snapshots
        for snapshot in snapshots:
            self.store.delete_snapshot(*self._snapshot_ids(snapshot))
        return None, None

    def _join(self, volume: Volume) -> None:
        """A new volume of a group joins its RBD group."""
        if volume.group_id:
            self.groups.add(volume.group_id, [self._volume_id(volume)])

    def _from_group_snapshot(self, volume: Volume, snapshot: Snapshot) -> bool:
        """Make ``volume`` from ``snapshot`` if it is the member of an RBD
        group snapshot (a copy: Ceph 16 clones user snapshots only); False
        when it is an image snapshot of its own."""
        if not self._in_group_snapshot(snapshot):
            return False
        source_id, snapshot_id = self._snapshot_ids(snapshot)
        source = self.groups.member_snapshot(source_id, str(snapshot.group_snapshot_id))
        if source is None:
            raise exception.SnapshotNotFound(snapshot_id=snapshot_id)
        volume_id = self._volume_id(volume)
        size = gib(volume.size, f"size of volume {volume_id}")
        if not self.store.whole(volume_id, size):
            features = self.images.features(multiattach(volume))
            if features is None:
                features = self.images.default_features()
            self.groups.copy(volume_id, size, features, source)
        return True

    def _in_group_snapshot(self, snapshot: Snapshot) -> bool:
        """Whether the snapshot is a member of an RBD group snapshot rather
        than an image snapshot of its own (taken by the worker's generic
        groups, or before the driver had groups)."""
        source_id, snapshot_id = self._snapshot_ids(snapshot)
        return bool(snapshot.group_snapshot_id) and not self.store.source_exists(
            source_id, snapshot_id
        )

    def _refuse_group_member(self, snapshot: Snapshot, action: str) -> None:
        """librbd rolls back a group snapshot only for the whole group."""
        if self._in_group_snapshot(snapshot):
            raise exception.InvalidInput(
                reason=f"snapshot {snapshot.id} is a member of RBD group snapshot "
                f"{snapshot.group_snapshot_id}; cannot {action} one member of it"
            )
