"""The wire contract's methods: check each argument, then hand over.

Every public method here is one method of the contract (1.0, and 1.1 for
groups) with its exact parameters. It validates what arrived (raising
``InvalidInput`` that names the argument) and returns the
:class:`~volworker.manager.request.Request` for the manager; nothing here
touches state or the backend.
"""

from __future__ import annotations

from typing import Any

from volworker import exception
from volworker.manager.request import Request
from volworker.rpc import validate, validate_groups
from volworker.rpc.validate import BackendIdentity

__all__ = ["CONTRACT_VERSION", "LIST_LIMIT_MAX", "Endpoint"]

CONTRACT_VERSION = "1.1"
#: The most records or manageable entries one listing returns, with or
#: without a ``limit``: a caller pages with ``marker`` (docs/rpc.md).
LIST_LIMIT_MAX = 1000


def _sort_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise exception.InvalidInput(reason=f"{field} must be a list of strings")
    return list(value)


class Endpoint:
    """Validates requests for one backend."""

    def __init__(self, ident: BackendIdentity, max_volume_size_gb: int) -> None:
        self.ident = ident
        self.max_gb = max_volume_size_gb

    def _volume(self, volume: Any) -> dict[str, Any]:
        return validate.volume(volume, self.ident, self.max_gb)

    # -- casts --------------------------------------------------------------

    def create_volume(self, volume: Any) -> Request:
        return Request("create_volume", {"volume": self._volume(volume)})

    def delete_volume(self, volume: Any, unmanage_only: Any = False) -> Request:
        return Request(
            "delete_volume",
            {
                "volume": self._volume(volume),
                "unmanage_only": validate.flag(unmanage_only, "unmanage_only"),
            },
        )

    def extend_volume(self, volume: Any, new_size: Any) -> Request:
        return Request(
            "extend_volume",
            {
                "volume": self._volume(volume),
                "new_size": validate.size(new_size, "new_size", self.max_gb),
            },
        )

    def create_snapshot(self, snapshot: Any) -> Request:
        return Request("create_snapshot", {"snapshot": validate.snapshot(snapshot)})

    def delete_snapshot(self, snapshot: Any, unmanage_only: Any = False) -> Request:
        return Request(
            "delete_snapshot",
            {
                "snapshot": validate.snapshot(snapshot),
                "unmanage_only": validate.flag(unmanage_only, "unmanage_only"),
            },
        )

    def revert_to_snapshot(self, volume: Any, snapshot: Any) -> Request:
        volume_args = self._volume(volume)
        snapshot_args = validate.snapshot(snapshot)
        if snapshot_args["volume_id"] != volume_args["id"]:
            raise exception.InvalidInput(
                reason=f"snapshot {snapshot_args['id']} is not a snapshot of "
                f"volume {volume_args['id']}"
            )
        return Request(
            "revert_to_snapshot", {"volume": volume_args, "snapshot": snapshot_args}
        )

    def manage_existing(self, volume: Any, ref: Any) -> Request:
        return Request(
            "manage_existing",
            {"volume": self._volume(volume), "ref": validate.manage_ref(ref)},
        )

    def manage_existing_snapshot(self, snapshot: Any, ref: Any) -> Request:
        return Request(
            "manage_existing_snapshot",
            {"snapshot": validate.snapshot(snapshot), "ref": validate.manage_ref(ref)},
        )

    def copy_volume_to_image(self, volume: Any, image_meta: Any) -> Request:
        return Request(
            "copy_volume_to_image",
            {
                "volume": self._volume(volume),
                "image_meta": validate.image_meta(image_meta),
            },
        )

    def publish_service_capabilities(self) -> Request:
        return Request("publish_service_capabilities", {})

    # -- casts on groups (1.1) ---------------------------------------------

    def create_group(self, group: Any) -> Request:
        return Request(
            "create_group", {"group": validate_groups.group(group, self.ident)}
        )

    def delete_group(self, group: Any, delete_volumes: Any = False) -> Request:
        return Request(
            "delete_group",
            {
                "group": validate_groups.group(group, self.ident),
                "delete_volumes": validate.flag(delete_volumes, "delete_volumes"),
            },
        )

    def update_group(
        self, group: Any, add_volumes: Any = None, remove_volumes: Any = None
    ) -> Request:
        return Request(
            "update_group",
            {
                "group": validate_groups.group(group, self.ident),
                "add_volumes": validate_groups.volume_ids(add_volumes, "add_volumes"),
                "remove_volumes": validate_groups.volume_ids(
                    remove_volumes, "remove_volumes"
                ),
            },
        )

    def create_group_snapshot(self, group_snapshot: Any) -> Request:
        return Request(
            "create_group_snapshot",
            {"group_snapshot": validate_groups.group_snapshot(group_snapshot)},
        )

    def delete_group_snapshot(self, group_snapshot: Any) -> Request:
        return Request(
            "delete_group_snapshot",
            {"group_snapshot": validate_groups.group_snapshot(group_snapshot)},
        )

    def create_group_from_src(
        self,
        group: Any,
        volumes: Any,
        group_snapshot_id: Any = None,
        source_group_id: Any = None,
    ) -> Request:
        checked = validate_groups.group(group, self.ident)
        if (group_snapshot_id is None) == (source_group_id is None):
            raise exception.InvalidInput(
                reason="name exactly one of group_snapshot_id and source_group_id"
            )
        if group_snapshot_id is not None:
            source, key = "group_snapshot_id", "snapshot_id"
            source_id = validate.uuid_str(group_snapshot_id, source)
        else:
            source, key = "source_group_id", "source_volid"
            source_id = validate.uuid_str(source_group_id, source)
        members = validate_groups.new_members(
            volumes, self.ident, self.max_gb, checked["id"], key
        )
        return Request(
            "create_group_from_src",
            {
                "group": checked,
                "volumes": members,
                "group_snapshot_id": None,
                "source_group_id": None,
                source: source_id,
            },
        )

    # -- calls --------------------------------------------------------------

    def initialize_connection(self, volume: Any, connector: Any) -> Request:
        return Request(
            "initialize_connection",
            {
                "volume": self._volume(volume),
                "connector": validate.connector(connector),
            },
        )

    def terminate_connection(
        self, volume: Any, connector: Any, force: Any = False
    ) -> Request:
        return Request(
            "terminate_connection",
            {
                "volume": self._volume(volume),
                "connector": validate.connector(connector, optional=True),
                "force": validate.flag(force, "force"),
            },
        )

    def get_capabilities(self, discover: Any = False) -> Request:
        return Request(
            "get_capabilities", {"discover": validate.flag(discover, "discover")}
        )

    def get_volume(self, volume_id: Any) -> Request:
        return Request(
            "get_volume", {"volume_id": validate.uuid_str(volume_id, "volume_id")}
        )

    def get_snapshot(self, snapshot_id: Any) -> Request:
        return Request(
            "get_snapshot",
            {"snapshot_id": validate.uuid_str(snapshot_id, "snapshot_id")},
        )

    def list_volumes(self, marker: Any = None, limit: Any = None) -> Request:
        return Request(
            "list_volumes",
            {
                "marker": None
                if marker is None
                else validate.uuid_str(marker, "marker"),
                "limit": self._limit(limit),
            },
        )

    def get_group(self, group_id: Any) -> Request:
        return Request(
            "get_group", {"group_id": validate.uuid_str(group_id, "group_id")}
        )

    def get_group_snapshot(self, group_snapshot_id: Any) -> Request:
        return Request(
            "get_group_snapshot",
            {
                "group_snapshot_id": validate.uuid_str(
                    group_snapshot_id, "group_snapshot_id"
                )
            },
        )

    def list_groups(self, marker: Any = None, limit: Any = None) -> Request:
        return Request(
            "list_groups",
            {
                "marker": None
                if marker is None
                else validate.uuid_str(marker, "marker"),
                "limit": self._limit(limit),
            },
        )

    def get_manageable_volumes(
        self,
        marker: Any = None,
        limit: Any = None,
        offset: Any = 0,
        sort_keys: Any = None,
        sort_dirs: Any = None,
    ) -> Request:
        return Request(
            "get_manageable_volumes",
            self._listing(marker, limit, offset, sort_keys, sort_dirs),
        )

    def get_manageable_snapshots(
        self,
        marker: Any = None,
        limit: Any = None,
        offset: Any = 0,
        sort_keys: Any = None,
        sort_dirs: Any = None,
    ) -> Request:
        return Request(
            "get_manageable_snapshots",
            self._listing(marker, limit, offset, sort_keys, sort_dirs),
        )

    # -- helpers ------------------------------------------------------------

    @staticmethod
    def _limit(limit: Any) -> int:
        value = validate.optional_int(limit, "limit")
        if value is None:
            return LIST_LIMIT_MAX
        if value > LIST_LIMIT_MAX:
            raise exception.InvalidInput(
                reason=f"limit must be at most {LIST_LIMIT_MAX}"
            )
        return value

    def _listing(
        self, marker: Any, limit: Any, offset: Any, sort_keys: Any, sort_dirs: Any
    ) -> dict[str, Any]:
        if marker is not None and not isinstance(marker, str):
            raise exception.InvalidInput(reason="marker must be a string")
        return {
            "marker": marker,
            "limit": self._limit(limit),
            "offset": validate.optional_int(offset, "offset") or 0,
            "sort_keys": _sort_list(sort_keys, "sort_keys"),
            "sort_dirs": _sort_list(sort_dirs, "sort_dirs"),
        }


#: The contract's method names: the endpoint's public methods.
METHODS = frozenset(
    name
    for name in vars(Endpoint)
    if not name.startswith("_") and callable(getattr(Endpoint, name))
)
