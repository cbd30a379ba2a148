"""Groups for every driver: the driver's own group methods when it declares
``Feature.GROUPS``, otherwise the generic ones here, which work member by
member through the core methods, as Cinder's volume manager does for
drivers without group support.

A generic group is only a record in the worker; its snapshot is one
snapshot per member taken one after another (not at one point in time), and
a group made from a source is one volume per member made from its snapshot
or source volume. When a step fails, what the earlier steps made is removed
again, so a failed group snapshot or copy leaves nothing behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from volworker import exception
from volworker.context import RequestContext
from volworker.driver.interface import (
    Feature,
    ModelUpdate,
    ModelUpdates,
    VolumeDriver,
)
from volworker.objects import Group, GroupSnapshot, Snapshot, Volume

__all__ = ["GenericGroups", "GroupMethods", "group_methods"]

LOG = logging.getLogger(__name__)


class GroupMethods(Protocol):
    """The six group methods of the seed's group driver interface."""

    def create_group(self, context: RequestContext, group: Group) -> ModelUpdate: ...

    def delete_group(
        self, context: RequestContext, group: Group, volumes: list[Volume]
    ) -> tuple[ModelUpdate, ModelUpdates]: ...

    def update_group(
        self,
        context: RequestContext,
        group: Group,
        add_volumes: list[Volume] | None = None,
        remove_volumes: list[Volume] | None = None,
    ) -> tuple[ModelUpdate, ModelUpdates, ModelUpdates]: ...

    def create_group_from_src(
        self,
        context: RequestContext,
        group: Group,
        volumes: list[Volume],
        group_snapshot: GroupSnapshot | None = None,
        snapshots: list[Snapshot] | None = None,
        source_group: Group | None = None,
        source_vols: list[Volume] | None = None,
    ) -> tuple[ModelUpdate, ModelUpdates]: ...

    def create_group_snapshot(
        self,
        context: RequestContext,
        group_snapshot: GroupSnapshot,
        snapshots: list[Snapshot],
    ) -> tuple[ModelUpdate, ModelUpdates]: ...

    def delete_group_snapshot(
        self,
        context: RequestContext,
        group_snapshot: GroupSnapshot,
        snapshots: list[Snapshot],
    ) -> tuple[ModelUpdate, ModelUpdates]: ...


def group_methods(driver: VolumeDriver, *, native: bool = True) -> GroupMethods:
    """The group methods to call for ``driver``: its own when it declares
    groups (and ``native``), the generic ones otherwise."""
    if native and driver.supports(Feature.GROUPS):
        return driver
    return GenericGroups(driver)


def _updates(entries: list[tuple[str, ModelUpdate]]) -> ModelUpdates:
    return [{"id": object_id, **(update or {})} for object_id, update in entries]


class GenericGroups:
    """Group methods made of the core methods of one driver."""

    def __init__(self, driver: VolumeDriver) -> None:
        self.driver = driver

    def create_group(self, context: RequestContext, group: Group) -> ModelUpdate:
        return None

    def delete_group(
        self, context: RequestContext, group: Group, volumes: list[Volume]
    ) -> tuple[ModelUpdate, ModelUpdates]:
        for volume in volumes:
            self.driver.delete_volume(volume)
        return None, None

    def update_group(
        self,
        context: RequestContext,
        group: Group,
        add_volumes: list[Volume] | None = None,
        remove_volumes: list[Volume] | None = None,
    ) -> tuple[ModelUpdate, ModelUpdates, ModelUpdates]:
        return None, None, None

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
        by_snapshot = {s.id: s for s in snapshots or ()}
        by_volume = {v.id: v for v in source_vols or ()}
        made: list[tuple[str, ModelUpdate]] = []
        try:
            for volume in volumes:
                if volume.snapshot_id in by_snapshot:
                    snap = by_snapshot[volume.snapshot_id]
                    update = self.driver.create_volume_from_snapshot(volume, snap)
                elif volume.source_volid in by_volume:
                    source = by_volume[volume.source_volid]
                    update = self.driver.create_cloned_volume(volume, source)
                else:
                    raise exception.InvalidInput(
                        reason=f"volume {volume.id} names no member of the source"
                    )
                made.append((volume.id, update))
        except BaseException:
            done = {object_id for object_id, _ in made}
            self._undo(self.driver.delete_volume, [v for v in volumes if v.id in done])
            raise
        return None, _updates(made)

    def create_group_snapshot(
        self,
        context: RequestContext,
        group_snapshot: GroupSnapshot,
        snapshots: list[Snapshot],
    ) -> tuple[ModelUpdate, ModelUpdates]:
        made: list[tuple[str, ModelUpdate]] = []
        try:
            for snapshot in snapshots:
                made.append((snapshot.id, self.driver.create_snapshot(snapshot)))
        except BaseException:
            done = {object_id for object_id, _ in made}
            self._undo(
                self.driver.delete_snapshot, [s for s in snapshots if s.id in done]
            )
            raise
        return None, _updates(made)

    def delete_group_snapshot(
        self,
        context: RequestContext,
        group_snapshot: GroupSnapshot,
        snapshots: list[Snapshot],
    ) -> tuple[ModelUpdate, ModelUpdates]:
        for snapshot in snapshots:
            self.driver.delete_snapshot(snapshot)
        return None, None

    @staticmethod
    def _undo(remove: Callable[[Any], None], made: Sequence[Volume | Snapshot]) -> None:
        for obj in made:
            try:
                remove(obj)
            except Exception as exc:
                # The failure that brought us here is the one to report.
                LOG.warning("Could not remove %s again: %s", obj.name, exc)
