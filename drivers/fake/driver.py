"""The fake driver: the whole contract, in memory, with latency and failures
to order.

It keeps no data, only the objects a backend would hold (volumes, snapshots,
exports, unmanaged objects), so manager tests and benchmarks can run the
worker at full speed or slow it down and make it fail where they choose:
``fake_latency`` / ``fake_method_latency`` and ``fake_failures`` in the
backend's section (``fake_healthy_calls`` spares the first calls of a
method), or :meth:`FakeDriver.inject_failure` from a test.

Every change to the objects goes through :meth:`FakeDriver._change` as an
effect (a small dict), which ``fake_effects_log`` records and from which
the objects are restored at the next start (see ``effects.py``).
"""

from __future__ import annotations

import builtins
import collections
import copy
import math
import secrets
import threading
import time
from collections.abc import Sequence
from typing import Any

from oslo_config import cfg

from volworker import exception
from volworker.context import RequestContext
from volworker.driver import Feature, ModelUpdate, volumedriver
from volworker.driver.manageable import paginate
from volworker.image import ImageService
from volworker.objects import Snapshot, Volume

from . import objects
from .effects import EffectsLog, read
from .groups import FakeGroups
from .objects import FakeObject
from .options import fake_opts

__all__ = ["FakeDriver"]


def _listing(name: str, obj: FakeObject, managed: dict[str, str]) -> dict[str, Any]:
    """One entry of a manageable listing, as the seed describes it."""
    return {
        "reference": {"source-name": name},
        "size": obj.size,
        "safe_to_manage": name not in managed,
        "reason_not_safe": "already managed" if name in managed else None,
        "cinder_id": managed.get(name),
        "extra_info": f"pool {obj.pool}",
    }


def _configured_error(name: str) -> type[Exception]:
    """The class ``fake_failures`` names: volworker's, or a Python built-in
    one for a driver that fails in a way the contract does not foresee."""
    found = getattr(exception, name, None) or getattr(builtins, name, None)
    if isinstance(found, type) and issubclass(found, Exception):
        return found
    return exception.VolumeBackendAPIException


@volumedriver
class FakeDriver(FakeGroups):
    """A backend that lives in memory."""

    VERSION = "1.0.0"
    VENDOR_NAME = "volworker"
    STORAGE_PROTOCOL = "fake"
    features = frozenset(
        {
            Feature.REVERT_TO_SNAPSHOT,
            Feature.MANAGE_VOLUMES,
            Feature.MANAGE_SNAPSHOTS,
            Feature.GROUPS,
            Feature.CONSISTENT_GROUP_SNAPSHOT,
        }
    )

    def __init__(self, configuration: Any) -> None:
        super().__init__(configuration)
        self._lock = threading.Lock()
        self.volumes: dict[str, FakeObject] = {}
        self.snapshots: dict[str, FakeObject] = {}
        self.exports: dict[str, dict[str, dict[str, Any]]] = {}
        self.unmanaged: dict[str, FakeObject] = {}
        self.unmanaged_snapshots: dict[str, FakeObject] = {}
        self._injected: dict[str, list[Exception]] = {}
        self._setup_failures_left = int(configuration.fake_setup_transient_failures)
        self.calls: list[str] = []
        self._counts: collections.Counter[str] = collections.Counter()
        self._effects: EffectsLog | None = None

    @classmethod
    def get_driver_options(cls) -> Sequence[cfg.Opt]:
        return fake_opts

    def supports(self, feature: Feature) -> bool:
        declined = self.configuration.fake_undeclared_features
        return super().supports(feature) and feature.value not in declined

    # -- behaviour to order -------------------------------------------------

    def inject_failure(self, method: str, error: Exception, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` raise ``error``."""
        self._injected.setdefault(method, []).extend([error] * times)

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        with self._lock:
            self._counts[method] += 1
            count = self._counts[method]
        if count <= int(self.configuration.fake_healthy_calls.get(method, 0)):
            return
        latency = self.configuration.fake_method_latency.get(
            method, self.configuration.fake_latency
        )
        if float(latency) > 0:
            time.sleep(float(latency))
        pending = self._injected.get(method)
        if pending:
            raise pending.pop(0)
        error_name = self.configuration.fake_failures.get(method)
        if error_name:
            raise _configured_error(error_name)(
                f"fake driver: {method} fails as configured ({error_name})"
            )

    def _pool(self, volume: Volume) -> str:
        pools = list(self.configuration.fake_pools)
        pool = volume.pool or pools[0]
        if pool not in pools:
            raise exception.InvalidInput(
                reason=f"pool {pool!r} is not a pool of backend "
                f"{self.configuration.backend_name}"
            )
        return pool

    def _volume(self, volume: Volume) -> FakeObject:
        try:
            return self.volumes[volume.name]
        except KeyError:
            raise exception.VolumeNotFound(volume_id=volume.id) from None

    def _snapshot(self, snapshot: Snapshot) -> FakeObject:
        try:
            return self.snapshots[snapshot.name]
        except KeyError:
            raise exception.SnapshotNotFound(snapshot_id=snapshot.id) from None

    def _change(self, method: str, **effect: Any) -> None:
        """Make a change to the objects and record it; hold ``_lock``."""
        objects.apply(self, method, effect)
        self._record(method, **effect)

    def _record(self, method: str, **effect: Any) -> None:
        if self._effects is not None:
            self._effects.record(method, effect)

    def _restore(self) -> None:
        """Rebuild the objects from the effects log, then append to it."""
        path = self.configuration.fake_effects_log
        if not path or self._effects is not None:
            return
        with self._lock:
            for entry in read(path):
                objects.apply(self, entry["method"], entry)
            self._effects = EffectsLog(path)

    # -- setup and stats ----------------------------------------------------

    def do_setup(self, context: RequestContext) -> None:
        self._enter("do_setup")
        self._restore()
        if self._setup_failures_left > 0:
            self._setup_failures_left -= 1
            raise exception.BackendUnavailable(data="fake backend is not reachable yet")

    def check_for_setup_error(self) -> None:
        self._enter("check_for_setup_error")
        if not self.configuration.fake_pools:
            raise exception.VolumeBackendAPIException(data="fake_pools is empty")

    def get_volume_stats(self, refresh: bool = False) -> dict[str, Any]:
        self._enter("get_volume_stats")
        with self._lock:
            objects = list(self.volumes.values())
        capacity = self.configuration.fake_pool_capacity_gb
        pools = []
        for name in self.configuration.fake_pools:
            sizes = [o.size for o in objects if o.pool == name]
            pools.append(
                {
                    "pool_name": name,
                    "total_capacity_gb": capacity,
                    "free_capacity_gb": max(capacity - sum(sizes), 0),
                    "provisioned_capacity_gb": sum(sizes),
                    "total_volumes": len(sizes),
                    "reserved_percentage": self.configuration.reserved_percentage,
                    "max_over_subscription_ratio": (
                        self.configuration.max_over_subscription_ratio
                    ),
                    "thin_provisioning_support": True,
                    "thick_provisioning_support": False,
                    "QoS_support": False,
                    "multiattach": False,
                    "online_extend_support": True,
                }
            )
        return {
            "volume_backend_name": self.configuration.backend_name,
            "vendor_name": self.VENDOR_NAME,
            "driver_version": self.VERSION,
            "storage_protocol": self.STORAGE_PROTOCOL,
            "total_capacity_gb": capacity * len(pools),
            "free_capacity_gb": sum(p["free_capacity_gb"] for p in pools),
            "pools": pools,
        }

    # -- volumes ------------------------------------------------------------

    def create_volume(self, volume: Volume) -> ModelUpdate:
        self._enter("create_volume")
        with self._lock:
            self._change(
                "create_volume",
                volume=volume.id,
                pool=self._pool(volume),
                size=volume.size,
            )
        return {"provider_location": f"fake://{volume.name}"}

    def delete_volume(self, volume: Volume) -> None:
        self._enter("delete_volume")
        with self._lock:
            if self.exports.get(volume.id):
                raise exception.VolumeIsBusy(volume_id=volume.id, reason="exported")
            if any(s.source == volume.name for s in self.snapshots.values()):
                raise exception.VolumeIsBusy(
                    volume_id=volume.id, reason="it has snapshots"
                )
            self._change("delete_volume", volume=volume.id)

    def _copy(
        self, method: str, volume: Volume, source: FakeObject, source_name: str
    ) -> None:
        """Make ``volume`` from ``source``, at least its size; hold ``_lock``."""
        self._change(
            method,
            volume=volume.id,
            pool=self._pool(volume),
            size=max(volume.size, source.size),
            source=source_name,
        )

    def create_volume_from_snapshot(
        self, volume: Volume, snapshot: Snapshot
    ) -> ModelUpdate:
        self._enter("create_volume_from_snapshot")
        with self._lock:
            snap = self._snapshot(snapshot)
            self._copy("create_volume_from_snapshot", volume, snap, snapshot.name)
        return {"provider_location": f"fake://{volume.name}"}

    def create_cloned_volume(self, volume: Volume, src_vref: Volume) -> ModelUpdate:
        self._enter("create_cloned_volume")
        with self._lock:
            src = self._volume(src_vref)
            self._copy("create_cloned_volume", volume, src, src_vref.name)
        return {"provider_location": f"fake://{volume.name}"}

    def extend_volume(self, volume: Volume, new_size: int) -> None:
        self._enter("extend_volume")
        with self._lock:
            obj = self._volume(volume)
            if new_size < obj.size:
                raise exception.InvalidInput(
                    reason=f"new size {new_size} is below the current {obj.size}"
                )
            self._change("extend_volume", volume=volume.id, size=new_size)

    # -- snapshots ----------------------------------------------------------

    def create_snapshot(self, snapshot: Snapshot) -> ModelUpdate:
        self._enter("create_snapshot")
        with self._lock:
            src = self._volume(snapshot.volume)
            self._change(
                "create_snapshot",
                snapshot=snapshot.id,
                volume=snapshot.volume.id,
                pool=src.pool,
                size=src.size,
            )
        return {"provider_location": f"fake://{snapshot.name}"}

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        self._enter("delete_snapshot")
        with self._lock:
            self._change("delete_snapshot", snapshot=snapshot.id)

    def revert_to_snapshot(
        self, context: RequestContext, volume: Volume, snapshot: Snapshot
    ) -> None:
        self._enter("revert_to_snapshot")
        with self._lock:
            self._volume(volume)
            self._snapshot(snapshot)
            self._change("revert_to_snapshot", volume=volume.id, snapshot=snapshot.id)

    # -- exports ------------------------------------------------------------

    def create_export(
        self, context: RequestContext, volume: Volume, connector: dict[str, Any]
    ) -> ModelUpdate:
        self._enter("create_export")
        self._volume(volume)
        return None

    def ensure_export(self, context: RequestContext, volume: Volume) -> ModelUpdate:
        self._enter("ensure_export")
        with self._lock:
            self._volume(volume)
            restored = self.exports.setdefault(volume.id, {})
            for attachment in volume.attachments:
                if attachment.connection_info:
                    host = str(attachment.connector.get("host"))
                    restored[host] = attachment.connection_info
        return None

    def remove_export(self, context: RequestContext, volume: Volume) -> None:
        self._enter("remove_export")

    def initialize_connection(
        self,
        volume: Volume,
        connector: dict[str, Any],
        initiator_data: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        self._enter("initialize_connection")
        updates = None
        with self._lock:
            self._volume(volume)
            exports = self.exports.setdefault(volume.id, {})
            host = str(connector.get("host"))
            if host not in exports:
                data = {"volume_id": volume.id, "target": secrets.token_hex(8)}
                if connector.get("initiator"):
                    # One secret per initiator, like CHAP: the worker keeps it
                    # and hands it back, also to a fake that restarted empty.
                    secret = (initiator_data or {}).get("auth_secret")
                    if secret is None:
                        secret = secrets.token_hex(16)
                        updates = {"set_values": {"auth_secret": secret}}
                    data["auth_secret"] = secret
                exports[host] = {"driver_volume_type": "fake", "data": data}
                self._record("initialize_connection", volume=volume.id, connector=host)
            info = copy.deepcopy(exports[host])
        if updates:
            info["initiator_updates"] = updates
        return info

    def terminate_connection(
        self, volume: Volume, connector: dict[str, Any] | None, **kwargs: Any
    ) -> None:
        self._enter("terminate_connection")
        with self._lock:
            exports = self.exports.get(volume.id, {})
            host = None if connector is None else str(connector.get("host"))
            closed = [h for h in exports if host in (None, h)]
            for name in closed:
                del exports[name]
            if closed:
                self._record("terminate_connection", volume=volume.id, connector=host)
            if not exports:
                self.exports.pop(volume.id, None)

    # -- images -------------------------------------------------------------

    def copy_image_to_volume(
        self,
        context: RequestContext,
        volume: Volume,
        image_service: ImageService,
        image_id: str,
        disable_sparse: bool = False,
    ) -> ModelUpdate:
        self._enter("copy_image_to_volume")
        meta = image_service.show(context, image_id)
        virtual = int(meta.get("virtual_size") or meta.get("size") or 0)
        if virtual > volume.size * 1024**3:
            raise exception.InvalidInput(
                reason=f"image {image_id} needs {virtual} bytes; volume "
                f"{volume.id} has {volume.size} GiB"
            )
        with self._lock:
            self._volume(volume)
            self._change(
                "copy_image_to_volume", volume=volume.id, source=f"image:{image_id}"
            )
        return None

    def copy_volume_to_image(
        self,
        context: RequestContext,
        volume: Volume,
        image_service: ImageService,
        image_meta: dict[str, Any],
    ) -> ModelUpdate:
        self._enter("copy_volume_to_image")
        self._volume(volume)
        return None

    # -- manage / unmanage --------------------------------------------------

    def plant(self, name: str, size: int, pool: str | None = None) -> None:
        """Put an object on the backend that the worker does not manage."""
        pool = pool or self.configuration.fake_pools[0]
        self.unmanaged[name] = FakeObject(pool, size)

    def _unmanaged_ref(
        self, store: dict[str, FakeObject], ref: dict[str, Any]
    ) -> tuple[str, FakeObject]:
        name = ref.get("source-name")
        if not isinstance(name, str) or name not in store:
            raise exception.ManageExistingInvalidReference(
                existing_ref=ref, reason="no unmanaged object has that source-name"
            )
        return name, store[name]

    def manage_existing(
        self, volume: Volume, existing_ref: dict[str, Any]
    ) -> ModelUpdate:
        self._enter("manage_existing")
        with self._lock:
            name, obj = self._unmanaged_ref(self.unmanaged, existing_ref)
            self._change(
                "manage_existing",
                volume=volume.id,
                reference=name,
                pool=obj.pool,
                size=obj.size,
                source=obj.source,
            )
        return {"provider_location": f"fake://{volume.name}"}

    def manage_existing_get_size(
        self, volume: Volume, existing_ref: dict[str, Any]
    ) -> int:
        self._enter("manage_existing_get_size")
        return math.ceil(self._unmanaged_ref(self.unmanaged, existing_ref)[1].size)

    def unmanage(self, volume: Volume) -> None:
        self._enter("unmanage")
        with self._lock:
            self._volume(volume)
            self._change("unmanage", volume=volume.id)

    def get_manageable_volumes(
        self,
        cinder_volumes: Sequence[Volume],
        marker: str | None,
        limit: int | None,
        offset: int,
        sort_keys: Sequence[str],
        sort_dirs: Sequence[str],
    ) -> list[dict[str, Any]]:
        self._enter("get_manageable_volumes")
        managed = {v.name: v.id for v in cinder_volumes}
        with self._lock:
            found = {**self.unmanaged, **self.volumes}
        entries = [_listing(name, obj, managed) for name, obj in found.items()]
        return paginate(entries, marker, limit, offset, sort_keys, sort_dirs)

    def manage_existing_snapshot(
        self, snapshot: Snapshot, existing_ref: dict[str, Any]
    ) -> ModelUpdate:
        self._enter("manage_existing_snapshot")
        with self._lock:
            self._volume(snapshot.volume)
            name, obj = self._unmanaged_ref(self.unmanaged_snapshots, existing_ref)
            self._change(
                "manage_existing_snapshot",
                snapshot=snapshot.id,
                volume=snapshot.volume.id,
                reference=name,
                pool=obj.pool,
                size=obj.size,
            )
        return {"provider_location": f"fake://{snapshot.name}"}

    def manage_existing_snapshot_get_size(
        self, snapshot: Snapshot, existing_ref: dict[str, Any]
    ) -> int:
        self._enter("manage_existing_snapshot_get_size")
        return self._unmanaged_ref(self.unmanaged_snapshots, existing_ref)[1].size

    def unmanage_snapshot(self, snapshot: Snapshot) -> None:
        self._enter("unmanage_snapshot")
        with self._lock:
            self._snapshot(snapshot)
            self._change("unmanage_snapshot", snapshot=snapshot.id)

    def get_manageable_snapshots(
        self,
        cinder_snapshots: Sequence[Snapshot],
        marker: str | None,
        limit: int | None,
        offset: int,
        sort_keys: Sequence[str],
        sort_dirs: Sequence[str],
    ) -> list[dict[str, Any]]:
        self._enter("get_manageable_snapshots")
        managed = {s.name: s.id for s in cinder_snapshots}
        with self._lock:
            found = {**self.unmanaged_snapshots, **self.snapshots}
        entries = [
            {
                **_listing(name, obj, managed),
                "source_reference": {"source-name": obj.source},
            }
            for name, obj in found.items()
        ]
        return paginate(entries, marker, limit, offset, sort_keys, sort_dirs)
