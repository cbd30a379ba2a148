"""The rbd driver: volumes as RBD images in one Ceph pool, attached by the
clients' own librbd (Nova and os-brick read the connection info).

The modules beside this one do the work (``store`` for volumes and
snapshots, ``collect`` for what is kept for clones, ``qemu`` for images,
``manage`` for manage and unmanage, ``groups`` for RBD groups); the driver
checks what it is given and turns Ceph's errors into the contract's at its
boundary (``base``). Every call runs on a worker thread, over the one
connection ``do_setup`` opened.
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any

from volworker import exception
from volworker.context import RequestContext
from volworker.driver import Feature, ModelUpdate, volumedriver
from volworker.image import ImageService
from volworker.objects import Snapshot, Volume
from volworker_drivers.file.tools import Limits

from . import capacity, connections, names, qemu
from .base import backend_call, gib, multiattach
from .cluster import Cluster, Settings
from .collect import Collector
from .fence import fence_member, fence_previous_instance
from .groups import RBDGroups
from .images import Images, order_of
from .manage import ManageMethods
from .store import Store

__all__ = ["RBDDriver"]

LOG = logging.getLogger(__name__)


@volumedriver
class RBDDriver(ManageMethods, RBDGroups):
    """Volumes as Ceph RBD images, copy-on-write snapshots and clones."""

    VERSION = "1.0.0"
    VENDOR_NAME = "volworker"
    STORAGE_PROTOCOL = "ceph"
    features = frozenset(
        {
            Feature.REVERT_TO_SNAPSHOT,
            Feature.MANAGE_VOLUMES,
            Feature.MANAGE_SNAPSHOTS,
            Feature.DATA_PATH,
            Feature.GROUPS,
            Feature.CONSISTENT_GROUP_SNAPSHOT,
        }
    )

    # -- setup and stats ----------------------------------------------------

    @backend_call
    def do_setup(self, context: RequestContext) -> None:
        conf = self.configuration
        try:
            order = order_of(conf.rbd_store_chunk_size)
        except ValueError as exc:
            raise exception.VolumeBackendAPIException(data=str(exc)) from exc
        os.makedirs(self.tmp_dir, mode=0o700, exist_ok=True)
        cluster = Cluster(Settings.from_config(conf))
        cluster.connect()
        images = Images(cluster, order)
        self._cluster = cluster
        self._store = Store(
            images,
            Collector(images),
            max_depth=conf.rbd_max_clone_depth,
            flatten_from_snapshot=conf.rbd_flatten_volume_from_snapshot,
        )

    @property
    def tmp_dir(self) -> str:
        """Where images pass through on their way in or out."""
        return os.path.join(self.configuration.state_dir, "images")

    def _pool_problems(self) -> list[str]:
        pool = self.configuration.rbd_pool
        try:
            ioctx = self.cluster.ioctx()
        except exception.VolworkerError as exc:
            return [exc.msg]
        if "rbd" not in ioctx.application_list():
            return [f"pool {pool} is not enabled for RBD (rbd pool init {pool})"]
        entity = self.cluster.settings.entity
        try:
            self.images.names()
        except self.images.lib.PermissionError:
            return [f"{entity} may not list the images of pool {pool}"]
        try:
            fence_previous_instance(
                self.cluster, self.configuration.host, self.configuration.instance
            )
            self.collector.pending()
        except self.images.lib.PermissionError:
            return [f"{entity} may not write to pool {pool} (caps: profile rbd)"]
        return []

    @backend_call
    def check_for_setup_error(self) -> None:
        problems = self._pool_problems()
        problem = qemu.rbd_problem()
        if problem:
            problems.append(problem)
        if problems:
            raise exception.VolumeBackendAPIException(data="; ".join(problems))

    @backend_call
    def get_volume_stats(self, refresh: bool = False) -> dict[str, Any]:
        if refresh or self._stats is None:
            # the periodic report is also when clones' parents that could
            # not be removed before are looked at again
            self.collector.pending()
            conf = self.configuration
            pool = capacity.pool_stats(
                self.images,
                dynamic=conf.report_dynamic_total_capacity,
                reserved_percentage=conf.reserved_percentage,
                ratio=conf.max_over_subscription_ratio,
            )
            self._stats = {
                "volume_backend_name": conf.backend_name,
                "vendor_name": self.VENDOR_NAME,
                "driver_version": self.VERSION,
                "storage_protocol": self.STORAGE_PROTOCOL,
                "total_capacity_gb": pool["total_capacity_gb"],
                "free_capacity_gb": pool["free_capacity_gb"],
                "pools": [pool],
            }
        # a copy, so that a caller adding to it does not change the cache
        return copy.deepcopy(self._stats)

    # -- volumes ------------------------------------------------------------

    @backend_call
    def create_volume(self, volume: Volume) -> ModelUpdate:
        volume_id = self._volume_id(volume)
        size = gib(volume.size, f"size of volume {volume_id}")
        self.store.create(volume_id, size, multiattach(volume))
        self._join(volume)
        return None

    @backend_call
    def delete_volume(self, volume: Volume) -> None:
        self.store.delete(self._volume_id(volume))

    def _clone(
        self,
        volume: Volume,
        source_id: str,
        snapshot_id: str | None,
        missing: exception.VolworkerError,
    ) -> None:
        volume_id = self._volume_id(volume)
        size = gib(volume.size, f"size of volume {volume_id}")
        try:
            self.store.clone(
                volume_id, size, multiattach(volume), source_id, snapshot_id
            )
        except self.images.lib.ImageNotFound as exc:
            if self.store.source_exists(source_id, snapshot_id):
                raise  # something else is missing: say what librbd said
            raise missing from exc

    @backend_call
    def create_volume_from_snapshot(
        self, volume: Volume, snapshot: Snapshot
    ) -> ModelUpdate:
        if not self._from_group_snapshot(volume, snapshot):
            source_id, snapshot_id = self._snapshot_ids(snapshot)
            missing = exception.SnapshotNotFound(snapshot_id=snapshot_id)
            self._clone(volume, source_id, snapshot_id, missing)
        self._join(volume)
        return None

    @backend_call
    def create_cloned_volume(self, volume: Volume, src_vref: Volume) -> ModelUpdate:
        source_id = self._volume_id(src_vref)
        missing = exception.VolumeNotFound(volume_id=source_id)
        self._clone(volume, source_id, None, missing)
        self._join(volume)
        return None

    @backend_call
    def extend_volume(self, volume: Volume, new_size: int) -> None:
        volume_id = self._volume_id(volume)
        self.store.extend(volume_id, gib(new_size, f"new size of volume {volume_id}"))

    # -- snapshots ----------------------------------------------------------

    @backend_call
    def create_snapshot(self, snapshot: Snapshot) -> ModelUpdate:
        self.store.create_snapshot(*self._snapshot_ids(snapshot))
        return None

    @backend_call
    def delete_snapshot(self, snapshot: Snapshot) -> None:
        if self._in_group_snapshot(snapshot):
            LOG.info(
                "Snapshot %s goes with its group snapshot %s",
                snapshot.id,
                snapshot.group_snapshot_id,
            )
            return
        self.store.delete_snapshot(*self._snapshot_ids(snapshot))

    @backend_call
    def revert_to_snapshot(
        self, context: RequestContext, volume: Volume, snapshot: Snapshot
    ) -> None:
        volume_id, snapshot_id = self._snapshot_ids(snapshot)
        self._refuse_group_member(snapshot, "revert to")
        if self._volume_id(volume) != volume_id:
            raise exception.InvalidInput(
                reason=f"snapshot {snapshot_id} is not a snapshot of volume {volume.id}"
            )
        size = gib(volume.size, f"size of volume {volume_id}")
        self.store.revert(volume_id, snapshot_id, size)

    # -- exports and connections --------------------------------------------

    @backend_call
    def create_export(
        self, context: RequestContext, volume: Volume, connector: dict[str, Any]
    ) -> ModelUpdate:
        # clients reach the image themselves; nothing is exported
        return None

    @backend_call
    def ensure_export(self, context: RequestContext, volume: Volume) -> ModelUpdate:
        """Make the image's record of attached connectors match the
        worker's attachments (a crash may have come between the two)."""
        volume_id = self._volume_id(volume)
        wanted = {
            connections.connector_host(a.connector): a.connector
            for a in volume.attachments
        }
        with self.images.open(names.volume(volume_id)) as image:
            known = set(connections.attached(image))
            for host in known - set(wanted):
                connections.forget(image, host)
            for host in set(wanted) - known:
                connections.remember(image, host, wanted[host])
        return None

    @backend_call
    def remove_export(self, context: RequestContext, volume: Volume) -> None:
        return None

    @backend_call
    def initialize_connection(
        self,
        volume: Volume,
        connector: dict[str, Any],
        initiator_data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        volume_id = self._volume_id(volume)
        host = connections.connector_host(connector)
        name = names.volume(volume_id)
        with self.images.open(name) as image:
            connections.remember(image, host, connector)
        return connections.connection_info(
            self.cluster, name, volume_id, self.configuration.rbd_secret_uuid
        )

    def exports_survive_worker(self) -> bool:
        # clients reach Ceph directly; no worker is on the data path
        return True

    @backend_call
    def fence_member(self, instance: str) -> None:
        fence_member(self.cluster, instance)

    @backend_call
    def terminate_connection(
        self, volume: Volume, connector: dict[str, Any] | None, **kwargs: Any
    ) -> None:
        volume_id = self._volume_id(volume)
        host = None if connector is None else connections.connector_host(connector)
        try:
            with self.images.open(names.volume(volume_id)) as image:
                connections.forget(image, host)
        except self.images.lib.ImageNotFound:
            LOG.info("Volume %s is gone; nothing to detach", volume_id)

    # -- images -------------------------------------------------------------

    @backend_call
    def copy_image_to_volume(
        self,
        context: RequestContext,
        volume: Volume,
        image_service: ImageService,
        image_id: str,
        disable_sparse: bool = False,
    ) -> ModelUpdate:
        volume_id = self._volume_id(volume)
        self._replaceable(volume_id)
        qemu.copy_image_to_volume(
            context,
            self.images,
            volume_id,
            image_service,
            image_id,
            tmp_dir=self.tmp_dir,
            timeout=self.configuration.rbd_convert_timeout,
            limits=Limits.of(self.configuration),
            features=self.images.features(multiattach(volume)),
            disable_sparse=disable_sparse,
        )
        self._join(volume)
        return None

    def _replaceable(self, volume_id: str) -> None:
        """Refuse to write an image onto a volume that is attached, or that
        has snapshots (its image is replaced by a new one)."""
        with self.images.open(names.volume(volume_id), read_only=True) as image:
            busy = (
                connections.attached(image)
                or list(self.images.snapshots(image))
                or list(self.images.group_snapshots(image))
            )
        if busy:
            raise exception.VolumeIsBusy(
                volume_id=volume_id,
                reason=f"it has snapshots or attachments ({', '.join(busy)}); "
                "cannot write an image onto it",
            )

    @backend_call
    def copy_volume_to_image(
        self,
        context: RequestContext,
        volume: Volume,
        image_service: ImageService,
        image_meta: dict[str, Any],
    ) -> ModelUpdate:
        qemu.copy_volume_to_image(
            context,
            self.images,
            self._volume_id(volume),
            image_service,
            image_meta,
            tmp_dir=self.tmp_dir,
            timeout=self.configuration.rbd_convert_timeout,
            limits=Limits.of(self.configuration),
        )
        return None
