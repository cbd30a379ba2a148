"""The file driver: volumes are sparse raw files in pool directories, attached
over NBD by qemu-nbd.

The modules beside this one do the work (see ``names`` for the layout of a
pool); the driver classes check what they are given, pick the pool, and turn
OS errors into the contract's errors with their cause kept (``base``). The
manage methods are in ``manage``, the group methods in ``groups``.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from oslo_config import cfg

from volworker import exception
from volworker.context import RequestContext
from volworker.driver import Feature, ModelUpdate, volumedriver
from volworker.image import ImageService
from volworker.objects import Snapshot, Volume

from . import capacity, images, names, nbd, store, tools
from .base import backend_call, gib
from .exports import ExportRegistry, connector_host, export_from_attachment
from .fsdir import Dir
from .groups import FileGroups
from .manage import ManageMethods
from .pools import Pool, PoolSet, make_dir, parse_pools, pool_problems
from .tempfiles import clear_stale

__all__ = ["FileDriver"]

LOG = logging.getLogger(__name__)


@volumedriver
class FileDriver(ManageMethods, FileGroups):
    """Volumes as sparse raw files in local directories, exported over NBD."""

    VERSION = "1.0.0"
    VENDOR_NAME = "volworker"
    STORAGE_PROTOCOL = "NBD"
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

    def _read_config(self) -> tuple[list[Pool], tuple[int, int] | None]:
        conf = self.configuration
        try:
            return (
                parse_pools(conf.file_pools),
                nbd.parse_port_range(conf.nbd_port_range),
            )
        except (exception.InvalidInput, cfg.Error) as exc:
            raise exception.VolumeBackendAPIException(
                data=f"backend {conf.backend}: {exc}"
            ) from exc

    def _prepare_pool(self, pool: Pool) -> None:
        try:
            make_dir(pool)
            if os.path.isdir(pool.path):
                with pool.open() as root:
                    clear_stale(root)
                    self.reflink[pool.name] = store.probe_reflink(root)
                LOG.info(
                    "Pool %s at %s: reflink %s",
                    pool.name,
                    pool.path,
                    "yes" if self.reflink[pool.name] else "no (sparse copies)",
                )
        except (OSError, exception.VolworkerError) as exc:
            # check_for_setup_error says what is wrong with the pool.
            LOG.warning("Pool %s is not ready: %s", pool.name, exc)

    @backend_call
    def do_setup(self, context: RequestContext) -> None:
        found, port_range = self._read_config()
        os.makedirs(self.configuration.state_dir, mode=0o700, exist_ok=True)
        conf = self.configuration
        tls = conf.nbd_tls != "none"
        if not tls:
            LOG.warning(
                "Backend %s: nbd_tls = none: NBD exports are served without "
                "TLS, and anyone who can reach %s can read and write the "
                "attached volumes; use it only on a trusted storage network",
                conf.backend,
                conf.nbd_host,
            )
        self._exports = ExportRegistry(
            conf.state_dir, conf.nbd_host, port_range, tls=tls
        )
        self._exports.setup()
        self._pools = PoolSet(found)
        for pool in found:
            self._prepare_pool(pool)

    @backend_call
    def check_for_setup_error(self) -> None:
        problems = [p for pool in self.pools for p in pool_problems(pool)]
        problems += tools.missing_tools()
        listen = nbd.listen_problem(self.configuration.nbd_host)
        if listen:
            problems.append(listen)
        if not os.access(self.exports.dir, os.W_OK | os.X_OK):
            problems.append(f"state directory {self.exports.dir} is not writable")
        if problems:
            raise exception.VolumeBackendAPIException(
                data=f"backend {self.configuration.backend}: " + "; ".join(problems)
            )

    @backend_call
    def get_volume_stats(self, refresh: bool = False) -> dict[str, Any]:
        if refresh or self._stats is None:
            conf = self.configuration
            found = [
                capacity.pool_stats(
                    pool, conf.reserved_percentage, conf.max_over_subscription_ratio
                )
                for pool in self.pools
            ]
            self._stats = {
                "volume_backend_name": conf.backend_name,
                "vendor_name": self.VENDOR_NAME,
                "driver_version": self.VERSION,
                "storage_protocol": self.STORAGE_PROTOCOL,
                **capacity.totals(found),
                "pools": found,
            }
        # A copy, so that a caller adding to it does not change the cache.
        return copy.deepcopy(self._stats)

    # -- volumes ------------------------------------------------------------

    @backend_call
    def create_volume(self, volume: Volume) -> ModelUpdate:
        volume_id = names.check_uuid(volume.id, "volume")
        size = gib(volume.size, f"size of volume {volume_id}")
        with self._root(volume) as root:
            store.create_volume(root, volume_id, size)
        return None

    @backend_call
    def delete_volume(self, volume: Volume) -> None:
        volume_id = names.check_uuid(volume.id, "volume")
        self._not_exported(volume_id, "delete it")
        with self._root(volume) as root:
            snapshots = store.snapshot_names(root, volume_id)
            if snapshots:
                raise exception.VolumeIsBusy(
                    volume_id=volume_id,
                    reason=f"it has snapshots ({', '.join(snapshots)})",
                )
            if not store.delete_volume(root, volume_id):
                LOG.info("Volume %s is not in its pool; nothing to delete", volume_id)

    def _new_volume_from(
        self,
        volume: Volume,
        source: Volume,
        open_source: Callable[[Dir], AbstractContextManager[int]],
        what: str,
    ) -> None:
        """Make ``volume`` a copy of what ``open_source`` opens in the pool
        of ``source``."""
        volume_id = names.check_uuid(volume.id, "volume")
        size = gib(volume.size, f"size of volume {volume_id}")
        with (
            self._root(source) as src_root,
            open_source(src_root) as src,
            self._root(volume) as root,
        ):
            method = store.new_volume_from(root, volume_id, src, size)
        self._copied(method, f"volume {volume_id} from {what}")

    @backend_call
    def create_volume_from_snapshot(
        self, volume: Volume, snapshot: Snapshot
    ) -> ModelUpdate:
        source_id, snapshot_id = self._snapshot_ids(snapshot)
        self._new_volume_from(
            volume,
            snapshot.volume,
            lambda root: store.open_snapshot(root, source_id, snapshot_id),
            f"snapshot {snapshot_id}",
        )
        return None

    @backend_call
    def create_cloned_volume(self, volume: Volume, src_vref: Volume) -> ModelUpdate:
        source_id = names.check_uuid(src_vref.id, "source volume")
        self._new_volume_from(
            volume,
            src_vref,
            lambda root: store.open_volume(root, source_id),
            f"volume {source_id}",
        )
        return None

    @backend_call
    def extend_volume(self, volume: Volume, new_size: int) -> None:
        volume_id = names.check_uuid(volume.id, "volume")
        size = gib(new_size, f"new size of volume {volume_id}")
        with self._root(volume) as root:
            store.extend_volume(root, volume_id, size)

    # -- snapshots ----------------------------------------------------------

    @backend_call
    def create_snapshot(self, snapshot: Snapshot) -> ModelUpdate:
        volume_id, snapshot_id = self._snapshot_ids(snapshot)
        with self._root(snapshot.volume) as root:
            method = store.create_snapshot(root, volume_id, snapshot_id)
        self._copied(method, f"snapshot {snapshot_id} of volume {volume_id}")
        return None

    @backend_call
    def delete_snapshot(self, snapshot: Snapshot) -> None:
        volume_id, snapshot_id = self._snapshot_ids(snapshot)
        with self._root(snapshot.volume) as root:
            if not store.delete_snapshot(root, volume_id, snapshot_id):
                LOG.info(
                    "Snapshot %s is not in its pool; nothing to delete", snapshot_id
                )

    @backend_call
    def revert_to_snapshot(
        self, context: RequestContext, volume: Volume, snapshot: Snapshot
    ) -> None:
        volume_id, snapshot_id = self._snapshot_ids(snapshot)
        if volume.id != volume_id:
            raise exception.InvalidInput(
                reason=f"snapshot {snapshot_id} is not a snapshot of volume {volume.id}"
            )
        # The revert puts a new file in place; an export would go on
        # serving the old one.
        self._not_exported(volume_id, "revert it")
        with (
            self._root(volume) as root,
            store.open_snapshot(root, volume_id, snapshot_id) as src,
        ):
            method = store.replace_volume_from(root, volume_id, src)
        self._copied(method, f"revert of volume {volume_id} to {snapshot_id}")

    # -- exports and connections --------------------------------------------

    @backend_call
    def create_export(
        self, context: RequestContext, volume: Volume, connector: dict[str, Any]
    ) -> ModelUpdate:
        # An NBD export is made per connector, in initialize_connection.
        volume_id = names.check_uuid(volume.id, "volume")
        with self._root(volume) as root, store.open_volume(root, volume_id):
            return None

    @backend_call
    def ensure_export(self, context: RequestContext, volume: Volume) -> ModelUpdate:
        volume_id = names.check_uuid(volume.id, "volume")
        wanted = [export_from_attachment(volume_id, a) for a in volume.attachments]
        with (
            self._root(volume) as root,
            store.open_volume(root, volume_id, os.O_RDWR) as fd,
        ):
            self.exports.restore(volume_id, [e for e in wanted if e], fd)
        return None

    @backend_call
    def remove_export(self, context: RequestContext, volume: Volume) -> None:
        self.exports.disconnect(names.check_uuid(volume.id, "volume"), None)

    @backend_call
    def initialize_connection(
        self,
        volume: Volume,
        connector: dict[str, Any],
        initiator_data: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        volume_id = names.check_uuid(volume.id, "volume")
        client = connector_host(connector)
        with (
            self._root(volume) as root,
            store.open_volume(root, volume_id, os.O_RDWR) as fd,
        ):
            return self.exports.connect(volume_id, client, fd)

    def exports_survive_worker(self) -> bool:
        return bool(self.configuration.file_shared_storage)

    @backend_call
    def terminate_connection(
        self, volume: Volume, connector: dict[str, Any] | None, **kwargs: Any
    ) -> None:
        volume_id = names.check_uuid(volume.id, "volume")
        client = None if connector is None else connector_host(connector)
        self.exports.disconnect(volume_id, client)

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
        volume_id = names.check_uuid(volume.id, "volume")
        self._not_exported(volume_id, "write an image onto it")
        with self._root(volume) as root:
            images.copy_image_to_volume(
                context,
                root,
                volume_id,
                image_service,
                image_id,
                timeout=self.configuration.file_convert_timeout,
                limits=tools.Limits.of(self.configuration),
                disable_sparse=disable_sparse,
            )
        return None

    @backend_call
    def copy_volume_to_image(
        self,
        context: RequestContext,
        volume: Volume,
        image_service: ImageService,
        image_meta: dict[str, Any],
    ) -> ModelUpdate:
        volume_id = names.check_uuid(volume.id, "volume")
        with self._root(volume) as root:
            images.copy_volume_to_image(
                context,
                root,
                volume_id,
                image_service,
                image_meta,
                timeout=self.configuration.file_convert_timeout,
                limits=tools.Limits.of(self.configuration),
            )
        return None
