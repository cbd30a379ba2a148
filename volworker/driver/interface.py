"""The driver contract: what a backend driver must do, and what it may do.

This is Cinder's volume driver API (``cinder.interface.volume_*_driver``,
``shared/seeds/``) restated for volworker. A driver subclasses
:class:`VolumeDriver`, implements every abstract method, declares the optional
:class:`Feature` set it implements in ``features`` and registers itself with
:func:`volumedriver`. ``volworker-compliance`` then checks every registered
driver: each core method is implemented, and so is every method of each
feature the driver declares.

Drivers are called from worker threads, one operation per volume at a time;
they must be safe to call concurrently for different volumes.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from oslo_config import cfg

from volworker import exception

if TYPE_CHECKING:
    from volworker.context import RequestContext
    from volworker.driver.config import BackendConfig
    from volworker.image import ImageService
    from volworker.objects import Group, GroupSnapshot, Snapshot, Volume

__all__ = [
    "CORE_METHODS",
    "FEATURE_METHODS",
    "Feature",
    "ModelUpdate",
    "ModelUpdates",
    "VolumeDriver",
    "registered_drivers",
    "volumedriver",
]

#: Database updates a driver returns for the object it was given, such as
#: ``{"provider_location": ...}``; None means nothing to update.
ModelUpdate = dict[str, Any] | None
#: Updates per member object, each with the ``id`` it applies to; None
#: means nothing to update.
ModelUpdates = list[dict[str, Any]] | None


class Feature(enum.StrEnum):
    """Optional parts of the contract a driver may declare."""

    #: revert_to_snapshot
    REVERT_TO_SNAPSHOT = "revert_to_snapshot"
    #: manage_existing, manage_existing_get_size, unmanage,
    #: get_manageable_volumes
    MANAGE_VOLUMES = "manage_volumes"
    #: manage_existing_snapshot, manage_existing_snapshot_get_size,
    #: unmanage_snapshot, get_manageable_snapshots
    MANAGE_SNAPSHOTS = "manage_snapshots"
    #: clone_image does real work for some images
    CLONE_IMAGE = "clone_image"
    #: the exports carry data a client can read and write (not a stand-in)
    DATA_PATH = "data_path"
    #: create_group, delete_group, update_group, create_group_from_src,
    #: create_group_snapshot, delete_group_snapshot done natively; without
    #: it the worker does them member by member (volworker.driver.groups)
    GROUPS = "groups"
    #: create_group_snapshot takes every member at one point in time
    CONSISTENT_GROUP_SNAPSHOT = "consistent_group_snapshot"


#: Methods every driver must implement (the seed's "Core Functionality").
CORE_METHODS: tuple[str, ...] = (
    "do_setup",
    "check_for_setup_error",
    "get_volume_stats",
    "create_volume",
    "delete_volume",
    "create_snapshot",
    "delete_snapshot",
    "create_volume_from_snapshot",
    "create_cloned_volume",
    "extend_volume",
    "create_export",
    "ensure_export",
    "remove_export",
    "initialize_connection",
    "terminate_connection",
    "copy_image_to_volume",
    "copy_volume_to_image",
)

#: Methods a driver must implement for each feature it declares.
FEATURE_METHODS: Mapping[Feature, tuple[str, ...]] = {
    Feature.REVERT_TO_SNAPSHOT: ("revert_to_snapshot",),
    Feature.MANAGE_VOLUMES: (
        "manage_existing",
        "manage_existing_get_size",
        "unmanage",
        "get_manageable_volumes",
    ),
    Feature.MANAGE_SNAPSHOTS: (
        "manage_existing_snapshot",
        "manage_existing_snapshot_get_size",
        "unmanage_snapshot",
        "get_manageable_snapshots",
    ),
    Feature.CLONE_IMAGE: ("clone_image",),
    Feature.DATA_PATH: (),
    Feature.GROUPS: (
        "create_group",
        "delete_group",
        "update_group",
        "create_group_from_src",
        "create_group_snapshot",
        "delete_group_snapshot",
    ),
    Feature.CONSISTENT_GROUP_SNAPSHOT: ("create_group_snapshot",),
}


class VolumeDriver(abc.ABC):
    """Base class of every backend driver.

    ``configuration`` is the driver's view of its backend section (see
    :class:`volworker.driver.config.BackendConfig`): the common backend
    options plus the options the driver lists in :meth:`get_driver_options`.
    """

    #: The driver's version, logged at start and reported in capabilities.
    VERSION: ClassVar[str] = "0.0.0"
    #: Who develops and supports the driver.
    VENDOR_NAME: ClassVar[str] = "unknown"
    #: Short protocol name for the scheduler ("NBD", "iSCSI", "NFS"...).
    STORAGE_PROTOCOL: ClassVar[str] = "unknown"
    #: The optional features this driver implements.
    features: ClassVar[frozenset[Feature]] = frozenset()

    def __init__(self, configuration: BackendConfig) -> None:
        self.configuration = configuration

    @classmethod
    def get_driver_options(cls) -> Sequence[cfg.Opt]:
        """The options this driver reads from its backend section."""
        return ()

    def supports(self, feature: Feature) -> bool:
        """Whether this driver does ``feature``: it declares it (a driver
        may decline a declared feature its configuration rules out)."""
        return feature in self.features

    # -- setup ------------------------------------------------------------

    @abc.abstractmethod
    def do_setup(self, context: RequestContext) -> None:
        """Prepare the driver once, right after it is loaded.

        Set up clients, helpers and anything the driver needs before it can
        be checked. Raise VolumeBackendAPIException when the backend cannot
        be used; the worker retries transient failures with backoff.
        """

    @abc.abstractmethod
    def check_for_setup_error(self) -> None:
        """Verify the backend is usable; raise if it is not.

        Called after do_setup. Check credentials, paths, external tools. The
        message must say exactly what is wrong: the worker consumes nothing
        for this backend until this returns without raising.
        """

    @abc.abstractmethod
    def get_volume_stats(self, refresh: bool = False) -> dict[str, Any]:
        """Report capacity and capabilities for the scheduler.

        Required keys: ``volume_backend_name``, ``vendor_name``,
        ``driver_version``, ``storage_protocol``, ``total_capacity_gb``,
        ``free_capacity_gb`` (a number of GiB, or ``"unknown"`` /
        ``"infinite"``). Optional: ``reserved_percentage``,
        ``location_info``, ``QoS_support``, ``provisioned_capacity_gb``,
        ``max_over_subscription_ratio``, ``thin_provisioning_support``,
        ``thick_provisioning_support``, ``total_volumes``,
        ``filter_function``, ``goodness_function``, ``multiattach``,
        ``sparse_copy_volume``, ``online_extend_support`` (default True).
        ``pools`` may list one such dict per pool, each with ``pool_name``.
        With ``refresh`` False a driver may answer from its cache.
        """

    # -- volumes ----------------------------------------------------------

    @abc.abstractmethod
    def create_volume(self, volume: Volume) -> ModelUpdate:
        """Allocate storage for a new, empty volume; do not export it.

        A new volume must never show another volume's old bytes. Raise
        VolumeBackendAPIException on failure, or
        VolumeSizeExceedsAvailableQuota when the pool cannot hold it.
        """

    @abc.abstractmethod
    def delete_volume(self, volume: Volume) -> None:
        """Remove a volume from the backend.

        Raise VolumeIsBusy while it has snapshots or exports. A volume the
        backend no longer has counts as deleted. Its data must never leak
        into a volume created later.
        """

    @abc.abstractmethod
    def create_volume_from_snapshot(
        self, volume: Volume, snapshot: Snapshot
    ) -> ModelUpdate:
        """Create a volume holding the snapshot's data.

        ``volume.size`` may exceed the snapshot's; the new volume is then
        extended to it.
        """

    @abc.abstractmethod
    def create_cloned_volume(self, volume: Volume, src_vref: Volume) -> ModelUpdate:
        """Create a volume holding a copy of ``src_vref``'s data.

        ``volume.size`` may exceed the source's; the clone is then extended.
        """

    @abc.abstractmethod
    def extend_volume(self, volume: Volume, new_size: int) -> None:
        """Grow a volume to ``new_size`` GiB. Volumes never shrink.

        Drivers that cannot extend an exported volume report
        ``online_extend_support: False`` in their stats.
        """

    # -- snapshots --------------------------------------------------------

    @abc.abstractmethod
    def create_snapshot(self, snapshot: Snapshot) -> ModelUpdate:
        """Take a point-in-time copy of ``snapshot.volume``."""

    @abc.abstractmethod
    def delete_snapshot(self, snapshot: Snapshot) -> None:
        """Remove a snapshot; one the backend no longer has counts as deleted."""

    # -- exports and connections -----------------------------------------

    @abc.abstractmethod
    def create_export(
        self, context: RequestContext, volume: Volume, connector: dict[str, Any]
    ) -> ModelUpdate:
        """Prepare the volume to be exported to ``connector``."""

    @abc.abstractmethod
    def ensure_export(self, context: RequestContext, volume: Volume) -> ModelUpdate:
        """Restore the exports of ``volume`` after the worker restarts.

        ``volume.attachments`` lists the attachments the worker knows, each
        with the connection_info it handed out; a client must be able to
        reconnect with that same information.
        """

    @abc.abstractmethod
    def remove_export(self, context: RequestContext, volume: Volume) -> None:
        """Undo create_export once the volume has no connection left."""

    @abc.abstractmethod
    def initialize_connection(
        self,
        volume: Volume,
        connector: dict[str, Any],
        initiator_data: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Let ``connector`` reach the volume; return the connection info.

        The result is ``{"driver_volume_type": str, "data": {...}}``. Called
        again for a connector that is already attached, it returns the same
        connection.

        ``initiator_data`` holds what this driver saved for the connector's
        ``initiator`` in earlier calls (None when it saved nothing). To save
        or drop values, the result may carry ``"initiator_updates":
        {"set_values": {key: value}, "remove_values": [key, ...]}``; the
        worker stores them and removes the field before replying.
        """

    def exports_survive_worker(self) -> bool:
        """Whether another worker serving this backend (a member of the
        same cluster) can export this worker's attachments once this one is
        gone: true when the data path does not run on the worker's own
        host (the storage is shared by every member, or clients reach the
        backend directly). Otherwise a dead member's attachments are lost.
        """
        return False

    def fence_member(self, instance: str) -> None:  # noqa: B027 - optional hook
        """Make sure nothing a dead member of this worker's cluster still
        had in flight can reach the backend any more; called before this
        worker redoes the work that ``instance`` (``"<host>@<backend>/
        <incarnation>"``, as ``configuration.instance`` names a worker) left
        unfinished. A driver whose backend a member can still write to after
        the cluster gave it up (a network client of shared storage) fences
        it here; an error leaves the work with the dead member, to be taken
        over at the next look. The default does nothing: the journal already
        refuses whatever the dead member would still record.
        """

    @abc.abstractmethod
    def terminate_connection(
        self, volume: Volume, connector: dict[str, Any] | None, **kwargs: Any
    ) -> None:
        """End ``connector``'s access; with connector None, end every access."""

    # -- images -----------------------------------------------------------

    @abc.abstractmethod
    def copy_image_to_volume(
        self,
        context: RequestContext,
        volume: Volume,
        image_service: ImageService,
        image_id: str,
        disable_sparse: bool = False,
    ) -> ModelUpdate:
        """Write the image's data onto the (already created) volume."""

    @abc.abstractmethod
    def copy_volume_to_image(
        self,
        context: RequestContext,
        volume: Volume,
        image_service: ImageService,
        image_meta: dict[str, Any],
    ) -> ModelUpdate:
        """Store the volume's data as an image described by ``image_meta``."""

    def clone_image(
        self,
        context: RequestContext,
        volume: Volume,
        image_location: tuple[str | None, list[dict[str, Any]] | None],
        image_meta: dict[str, Any],
        image_service: ImageService,
    ) -> tuple[ModelUpdate, bool]:
        """Create the volume from an image efficiently, if the driver can.

        Return ``(model_update, True)`` when it did, or ``(None, False)`` to
        let the worker create the volume and copy the image onto it.
        """
        return None, False

    # -- revert (Feature.REVERT_TO_SNAPSHOT) ------------------------------

    def revert_to_snapshot(
        self, context: RequestContext, volume: Volume, snapshot: Snapshot
    ) -> None:
        """Make the volume's data that of the snapshot; keep its size."""
        raise exception.NotSupported(operation="revert_to_snapshot")

    # -- manage / unmanage volumes (Feature.MANAGE_VOLUMES) ---------------

    def manage_existing(
        self, volume: Volume, existing_ref: dict[str, Any]
    ) -> ModelUpdate:
        """Bring an existing backend object under the worker as ``volume``.

        ``existing_ref`` holds ``source-name`` or ``source-id``. Raise
        ManageExistingInvalidReference when it names nothing usable, and
        ManageExistingVolumeTypeMismatch when the volume type cannot apply.
        """
        raise exception.NotSupported(operation="manage_existing")

    def manage_existing_get_size(
        self, volume: Volume, existing_ref: dict[str, Any]
    ) -> int:
        """Size in GiB, rounded up, of what manage_existing would adopt."""
        raise exception.NotSupported(operation="manage_existing_get_size")

    def unmanage(self, volume: Volume) -> None:
        """Forget the volume but leave its backend object in place."""
        raise exception.NotSupported(operation="unmanage")

    def get_manageable_volumes(
        self,
        cinder_volumes: Sequence[Volume],
        marker: str | None,
        limit: int | None,
        offset: int,
        sort_keys: Sequence[str],
        sort_dirs: Sequence[str],
    ) -> list[dict[str, Any]]:
        """List backend volumes with what it takes to manage them.

        Each entry: ``reference`` (a dict fit for manage_existing),
        ``size`` (GiB, rounded up), ``safe_to_manage``, ``reason_not_safe``,
        ``cinder_id`` (the worker's id when already managed) and
        ``extra_info``. Sorted by ``sort_keys`` (``identifier``, ``size``)
        in ``sort_dirs`` (``asc``, ``desc``); then entries up to and
        including ``marker`` are dropped, ``offset`` more are skipped and at
        most ``limit`` are returned.
        """
        raise exception.NotSupported(operation="get_manageable_volumes")

    # -- manage / unmanage snapshots (Feature.MANAGE_SNAPSHOTS) -----------

    def manage_existing_snapshot(
        self, snapshot: Snapshot, existing_ref: dict[str, Any]
    ) -> ModelUpdate:
        """Bring an existing backend snapshot under the worker."""
        raise exception.NotSupported(operation="manage_existing_snapshot")

    def manage_existing_snapshot_get_size(
        self, snapshot: Snapshot, existing_ref: dict[str, Any]
    ) -> int:
        """Size in GiB, rounded up, of the snapshot manage would adopt."""
        raise exception.NotSupported(operation="manage_existing_snapshot_get_size")

    def unmanage_snapshot(self, snapshot: Snapshot) -> None:
        """Forget the snapshot but leave its backend object in place."""
        raise exception.NotSupported(operation="unmanage_snapshot")

    def get_manageable_snapshots(
        self,
        cinder_snapshots: Sequence[Snapshot],
        marker: str | None,
        limit: int | None,
        offset: int,
        sort_keys: Sequence[str],
        sort_dirs: Sequence[str],
    ) -> list[dict[str, Any]]:
        """As get_manageable_volumes, for snapshots; entries also carry
        ``source_reference``, the reference of the snapshot's volume."""
        raise exception.NotSupported(operation="get_manageable_snapshots")

    # -- groups (Feature.GROUPS) ----------------------------------------------

    def create_group(self, context: RequestContext, group: Group) -> ModelUpdate:
        """Make the backend's object for a new, empty group, if it has one.

        A model update with ``status: error`` (or an exception) fails it.
        """
        raise exception.NotSupported(operation="create_group")

    def delete_group(
        self, context: RequestContext, group: Group, volumes: list[Volume]
    ) -> tuple[ModelUpdate, ModelUpdates]:
        """Delete the group, and ``volumes``, its members, with it.

        Returns the group's model update and one per volume; a volume whose
        update says ``error_deleting`` (or ``error``) was not deleted.
        """
        raise exception.NotSupported(operation="delete_group")

    def update_group(
        self,
        context: RequestContext,
        group: Group,
        add_volumes: list[Volume] | None = None,
        remove_volumes: list[Volume] | None = None,
    ) -> tuple[ModelUpdate, ModelUpdates, ModelUpdates]:
        """Add ``add_volumes`` to the group and take ``remove_volumes`` out.

        Returns the group's model update and those of the volumes added and
        removed (each entry with its ``id``).
        """
        raise exception.NotSupported(operation="update_group")

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
        """Create ``group`` with ``volumes``, each from its member snapshot
        of ``group_snapshot`` (``volume.snapshot_id``) or its member volume
        of ``source_group`` (``volume.source_volid``).

        Returns the group's model update and one per new volume. When it
        fails, nothing it made may be left behind.
        """
        raise exception.NotSupported(operation="create_group_from_src")

    def create_group_snapshot(
        self,
        context: RequestContext,
        group_snapshot: GroupSnapshot,
        snapshots: list[Snapshot],
    ) -> tuple[ModelUpdate, ModelUpdates]:
        """Take ``snapshots``, one per member of the group, together (at one
        point in time when the driver declares CONSISTENT_GROUP_SNAPSHOT).

        Returns the group snapshot's model update and one per snapshot. When
        it fails, no member snapshot may be left behind.
        """
        raise exception.NotSupported(operation="create_group_snapshot")

    def delete_group_snapshot(
        self,
        context: RequestContext,
        group_snapshot: GroupSnapshot,
        snapshots: list[Snapshot],
    ) -> tuple[ModelUpdate, ModelUpdates]:
        """Delete a group snapshot and its member ``snapshots``."""
        raise exception.NotSupported(operation="delete_group_snapshot")


_DriverT = TypeVar("_DriverT", bound=type[VolumeDriver])
_REGISTRY: dict[str, type[VolumeDriver]] = {}


def volumedriver(cls: _DriverT) -> _DriverT:
    """Register a driver class so that ``volworker-compliance`` checks it."""
    _REGISTRY[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


def registered_drivers() -> dict[str, type[VolumeDriver]]:
    """The registered driver classes, keyed by their import path."""
    return dict(_REGISTRY)
