"""Groups on the file driver (Feature.GROUPS, CONSISTENT_GROUP_SNAPSHOT).

A group has no file of its own: the worker records it. A group snapshot is
one reflink (or sparse copy) per member, taken in one pass while the worker
holds every member's turn. What makes it one point in time is that nothing
else writes: a group whose type asks for consistency is refused while a
member is exported over NBD, where a client could write between two
members' copies. Without that request an attached member is copied as it
is at its own moment (crash-consistent per member, not across members).
"""

from __future__ import annotations

import logging

from volworker import exception
from volworker.context import RequestContext
from volworker.driver import ModelUpdate, ModelUpdates
from volworker.driver.groups import GenericGroups
from volworker.objects import Group, GroupSnapshot, Snapshot, Volume

from .base import FileDriverBase, backend_call

__all__ = ["FileGroups"]

LOG = logging.getLogger(__name__)


class FileGroups(FileDriverBase):
    """The file driver's group methods."""

    def create_group(self, context: RequestContext, group: Group) -> ModelUpdate:
        return None

    @backend_call
    def delete_group(
        self, context: RequestContext, group: Group, volumes: list[Volume]
    ) -> tuple[ModelUpdate, ModelUpdates]:
        for volume in volumes:
            self._not_exported(volume.id, "delete it with its group")
        return GenericGroups(self).delete_group(context, group, volumes)

    def update_group(
        self,
        context: RequestContext,
        group: Group,
        add_volumes: list[Volume] | None = None,
        remove_volumes: list[Volume] | None = None,
    ) -> tuple[ModelUpdate, ModelUpdates, ModelUpdates]:
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
        # One reflink per new member, each from its own source: the sources
        # are snapshots, or volumes whose turns the worker holds.
        return GenericGroups(self).create_group_from_src(
            context,
            group,
            volumes,
            group_snapshot,
            snapshots,
            source_group,
            source_vols,
        )

    @backend_call
    def create_group_snapshot(
        self,
        context: RequestContext,
        group_snapshot: GroupSnapshot,
        snapshots: list[Snapshot],
    ) -> tuple[ModelUpdate, ModelUpdates]:
        if group_snapshot.group.consistent:
            exported = [s.volume_id for s in snapshots if self._exported(s.volume_id)]
            if exported:
                raise exception.VolumeIsBusy(
                    volume_id=exported[0],
                    reason="a consistent group snapshot needs every member "
                    f"detached; attached: {', '.join(exported)}",
                )
        return GenericGroups(self).create_group_snapshot(
            context, group_snapshot, snapshots
        )

    @backend_call
    def delete_group_snapshot(
        self,
        context: RequestContext,
        group_snapshot: GroupSnapshot,
        snapshots: list[Snapshot],
    ) -> tuple[ModelUpdate, ModelUpdates]:
        return GenericGroups(self).delete_group_snapshot(
            context, group_snapshot, snapshots
        )

    def _exported(self, volume_id: str) -> bool:
        return bool(self.exports.is_exported(volume_id))
