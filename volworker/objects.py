"""Volume, snapshot and attachment objects as drivers see them.

Drivers read these by attribute (``volume.id``, ``volume.name``,
``volume.pool``...), never as raw dicts. The worker builds them from its state
store; they carry no behaviour beyond a few derived names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Attachment",
    "Group",
    "GroupSnapshot",
    "GroupType",
    "Snapshot",
    "Volume",
    "VolumeType",
    "split_host",
]

VOLUME_NAME_TEMPLATE = "volume-%s"
SNAPSHOT_NAME_TEMPLATE = "snapshot-%s"
GROUP_NAME_TEMPLATE = "group-%s"
GROUP_SNAPSHOT_NAME_TEMPLATE = "group-snapshot-%s"


def split_host(host: str) -> tuple[str, str | None]:
    """Split ``"<host>@<backend>#<pool>"`` into the service and the pool."""
    service, sep, pool = host.partition("#")
    return service, (pool if sep else None)


@dataclass(frozen=True)
class VolumeType:
    name: str
    extra_specs: dict[str, str] = field(default_factory=dict)


@dataclass
class Attachment:
    """One export of a volume to one connector."""

    id: str
    volume_id: str
    connector: dict[str, Any]
    connection_info: dict[str, Any] | None = None


@dataclass
class Volume:
    id: str
    size: int
    host: str
    display_name: str | None = None
    status: str = "creating"
    volume_type: VolumeType | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    snapshot_id: str | None = None
    source_volid: str | None = None
    image_id: str | None = None
    provider_location: str | None = None
    provider_auth: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    group_id: str | None = None

    @property
    def name(self) -> str:
        """The backend name of the volume: ``volume-<id>``."""
        return VOLUME_NAME_TEMPLATE % self.id

    @property
    def pool(self) -> str | None:
        """The pool named in ``host`` after ``#``, or None for the default."""
        return split_host(self.host)[1]

    @property
    def service_host(self) -> str:
        """``host`` without its pool: ``"<host>@<backend>"``."""
        return split_host(self.host)[0]

    def replace(self, **changes: Any) -> Volume:
        return dataclasses.replace(self, **changes)


@dataclass
class Snapshot:
    id: str
    volume_id: str
    volume: Volume
    display_name: str | None = None
    status: str = "creating"
    metadata: dict[str, Any] = field(default_factory=dict)
    provider_location: str | None = None
    #: Size in GiB of the volume when the snapshot was taken.
    volume_size: int = 0
    group_snapshot_id: str | None = None

    def __post_init__(self) -> None:
        if not self.volume_size:
            self.volume_size = self.volume.size

    @property
    def name(self) -> str:
        """The backend name of the snapshot: ``snapshot-<id>``."""
        return SNAPSHOT_NAME_TEMPLATE % self.id

    def replace(self, **changes: Any) -> Snapshot:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class GroupType:
    name: str
    group_specs: dict[str, str] = field(default_factory=dict)

    @property
    def consistent(self) -> bool:
        """Whether the type asks for snapshots of every member at one point
        in time (``consistent_group_snapshot_enabled: "<is> True"``)."""
        value = str(self.group_specs.get("consistent_group_snapshot_enabled", ""))
        return value.replace("<is>", "").strip().lower() == "true"


@dataclass
class Group:
    """A set of volumes of one backend, snapshotted and copied together."""

    id: str
    host: str
    display_name: str | None = None
    status: str = "creating"
    group_type: GroupType | None = None
    volumes: list[Volume] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The backend name of the group: ``group-<id>``."""
        return GROUP_NAME_TEMPLATE % self.id

    @property
    def consistent(self) -> bool:
        return self.group_type is not None and self.group_type.consistent

    def replace(self, **changes: Any) -> Group:
        return dataclasses.replace(self, **changes)


@dataclass
class GroupSnapshot:
    """Snapshots of a group's members, taken together."""

    id: str
    group_id: str
    group: Group
    display_name: str | None = None
    status: str = "creating"

    @property
    def name(self) -> str:
        """The backend name of the group snapshot: ``group-snapshot-<id>``."""
        return GROUP_SNAPSHOT_NAME_TEMPLATE % self.id

    def replace(self, **changes: Any) -> GroupSnapshot:
        return dataclasses.replace(self, **changes)
