"""Groups on the fake backend (Feature.GROUPS, CONSISTENT_GROUP_SNAPSHOT).

A group snapshot takes every member under one hold of the backend's lock,
so the members are copied at one moment. Each group method is one effect
(see ``objects``): the fault suite sees a group snapshot as one change, not
as snapshots nobody asked for. Latency and failures apply per method, as
for the rest of the fake (``fake_method_latency``, ``fake_failures``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from volworker import exception
from volworker.context import RequestContext
from volworker.driver import ModelUpdate, ModelUpdates, VolumeDriver
from volworker.objects import Group, GroupSnapshot, Snapshot, Volume

from .objects import FakeObject

__all__ = ["FakeGroups"]


class FakeGroups(VolumeDriver):
    """The fake driver's group methods (a mixin of FakeDriver)."""

    # What FakeDriver holds and does, for the methods below.
    _lock: threading.Lock
    volumes: dict[str, FakeObject]
    snapshots: dict[str, FakeObject]
    exports: dict[str, dict[str, dict[str, Any]]]
    _enter: Callable[[str], None]
    _change: Callable[..., None]
    _record: Callable[..., None]
    _pool: Callable[[Volume], str]

    def _member(self, volume: Volume) -> FakeObject:
        try:
            return self.volumes[volume.name]
        except KeyError:
            raise exception.VolumeNotFound(volume_id=volume.id) from None

    def create_group(self, context: RequestContext, group: Group) -> ModelUpdate:
        self._enter("create_group")
        with self._lock:
            self._record("create_group", group=group.id)
        return None

    def update_group(
        self,
        context: RequestContext,
        group: Group,
        add_volumes: list[Volume] | None = None,
        remove_volumes: list[Volume] | None = None,
    ) -> tuple[ModelUpdate, ModelUpdates, ModelUpdates]:
        self._enter("update_group")
        with self._lock:
            for volume in add_volumes or ():
                self._member(volume)
            self._record(
                "update_group",
                group=group.id,
                added=[v.id for v in add_volumes or ()],
                removed=[v.id for v in remove_volumes or ()],
            )
        return None, None, None

    def delete_group(
        self, context: RequestContext, group: Group, volumes: list[Volume]
    ) -> tuple[ModelUpdate, ModelUpdates]:
        self._enter("delete_group")
        with self._lock:
            for volume in volumes:
                if self.exports.get(volume.id):
                    raise exception.VolumeIsBusy(volume_id=volume.id, reason="exported")
                if any(s.source == volume.name for s in self.snapshots.values()):
                    raise exception.VolumeIsBusy(
                        volume_id=volume.id, reason="it has snapshots"
                    )
            self._change(
                "delete_group", group=group.id, volumes=[v.id for v in volumes]
            )
        return None, None

    def create_group_snapshot(
        self,
        context: RequestContext,
        group_snapshot: GroupSnapshot,
        snapshots: list[Snapshot],
    ) -> tuple[ModelUpdate, ModelUpdates]:
        self._enter("create_group_snapshot")
        with self._lock:  # every member at the same moment
            taken = []
            for snap in snapshots:
                source = self._member(snap.volume)
                taken.append(
                    {
                        "snapshot": snap.id,
                        "volume": snap.volume.id,
                        "pool": source.pool,
                        "size": source.size,
                    }
                )
            self._change(
                "create_group_snapshot", group_snapshot=group_snapshot.id, taken=taken
            )
        return None, [
            {"id": s.id, "provider_location": f"fake://{s.name}"} for s in snapshots
        ]

    def delete_group_snapshot(
        self,
        context: RequestContext,
        group_snapshot: GroupSnapshot,
        snapshots: list[Snapshot],
    ) -> tuple[ModelUpdate, ModelUpdates]:
        self._enter("delete_group_snapshot")
        with self._lock:
            self._change(
                "delete_group_snapshot",
                group_snapshot=group_snapshot.id,
                snapshots=[s.id for s in snapshots],
            )
        return None, None

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
        self._enter("create_group_from_src")
        sources = {s.id: s.name for s in snapshots or ()}
        sources.update({v.id: v.name for v in source_vols or ()})
        with self._lock:
            made = []
            for volume in volumes:
                source_id = volume.snapshot_id or volume.source_volid
                name = sources.get(str(source_id))
                found = self.snapshots.get(name or "") or self.volumes.get(name or "")
                if found is None:
                    raise exception.InvalidInput(
                        reason=f"volume {volume.id}: source {source_id} is not there"
                    )
                made.append(
                    {
                        "volume": volume.id,
                        "pool": self._pool(volume),
                        "size": max(volume.size, found.size),
                        "source": name,
                    }
                )
            self._change("create_group_from_src", group=group.id, made=made)
        return None, [
            {"id": v.id, "provider_location": f"fake://{v.name}"} for v in volumes
        ]
