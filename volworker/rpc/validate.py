"""Checks on what arrives over the wire, before anything is journaled.

Each function takes the raw JSON value of one argument and returns it in
canonical form, or raises ``InvalidInput`` naming the argument and what is
wrong with it. Unknown keys in objects are ignored (a tolerant reader), but
every key the contract defines is checked.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from volworker import exception

__all__ = [
    "BackendIdentity",
    "connector",
    "flag",
    "image_meta",
    "manage_ref",
    "optional_int",
    "size",
    "snapshot",
    "uuid_str",
    "volume",
]

MAX_NAME = 255
MAX_METADATA_ITEMS = 64
MAX_METADATA_VALUE = 1024
DISK_FORMATS = ("raw", "qcow2")
#: A connector is journaled, stored with its attachment and handed to the
#: driver: it is held to what an initiator really sends (os-brick's
#: connectors are flat, with a few short lists), so no request can make the
#: worker store or walk an object of any size or depth.
MAX_CONNECTOR_BYTES = 16 * 1024
MAX_CONNECTOR_ITEMS = 64  # keys of an object, items of a list
MAX_CONNECTOR_DEPTH = 4  # the connector itself is level 1


def _fail(reason: str) -> exception.InvalidInput:
    return exception.InvalidInput(reason=reason)


def uuid_str(value: Any, field: str) -> str:
    """A UUID, returned in its canonical lower-case form."""
    if not isinstance(value, str):
        raise _fail(f"{field} must be a UUID string, not {type(value).__name__}")
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise _fail(f"{field} {value[:64]!r} is not a UUID") from None
    return str(parsed)


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"{field} must be an integer, not {type(value).__name__}")
    return value


def size(value: Any, field: str, max_gb: int) -> int:
    """A size in GiB from 1 to ``max_gb``."""
    gb = _int(value, field)
    if not 1 <= gb <= max_gb:
        raise _fail(f"{field} {gb} is outside 1..{max_gb} GiB")
    return gb


def optional_int(value: Any, field: str) -> int | None:
    if value is None:
        return None
    number = _int(value, field)
    if number < 0:
        raise _fail(f"{field} must not be negative")
    return number


def flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(f"{field} must be true or false, not {type(value).__name__}")
    return value


def _text(value: Any, field: str, *, limit: int = MAX_NAME) -> str:
    if not isinstance(value, str):
        raise _fail(f"{field} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise _fail(f"{field} is longer than {limit} characters")
    if any(ord(c) < 32 for c in value):
        raise _fail(f"{field} contains control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(f"{field} is not valid Unicode text") from None
    return value


def _optional_text(value: Any, field: str) -> str | None:
    return None if value is None else _text(value, field)


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"{field} must be an object, not {type(value).__name__}")
    return value


def _metadata(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    items = _object(value, field)
    if len(items) > MAX_METADATA_ITEMS:
        raise _fail(f"{field} has more than {MAX_METADATA_ITEMS} keys")
    result: dict[str, Any] = {}
    for key, item in items.items():
        _text(key, f"{field} key")
        if item is not None and not isinstance(item, str | int | float | bool):
            raise _fail(f"{field}[{key!r}] must be a string, number or boolean")
        if isinstance(item, str):
            _text(item, f"{field}[{key!r}]", limit=MAX_METADATA_VALUE)
        result[key] = item
    return result


def specs(value: Any, field: str) -> dict[str, str]:
    """A type's specs (``extra_specs``, ``group_specs``): at most
    :data:`MAX_METADATA_ITEMS` text keys with text values."""
    items = _object({} if value is None else value, field)
    if len(items) > MAX_METADATA_ITEMS:
        raise _fail(f"{field} has more than {MAX_METADATA_ITEMS} keys")
    return {
        _text(k, f"{field} key"): _text(v, f"{field}[{k!r}]") for k, v in items.items()
    }


def _volume_type(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    vtype = _object(value, "volume.volume_type")
    return {
        "name": _text(vtype.get("name"), "volume.volume_type.name"),
        "extra_specs": specs(
            vtype.get("extra_specs"), "volume.volume_type.extra_specs"
        ),
    }


@dataclass(frozen=True)
class BackendIdentity:
    """Which ``host`` values belong to the backend this worker serves."""

    host: str
    backend: str
    cluster: str | None
    pools: tuple[str, ...]

    def check_host(self, value: Any, field: str) -> str:
        """The volume's host with its pool: ``"<host>@<backend>#<pool>"``.

        The host part must be this worker's host or cluster (in a cluster,
        any member's host); without ``#pool`` the default pool is added.
        """
        text = _text(value, field)
        service, _, pool = text.partition("#")
        host, sep, backend = service.partition("@")
        if not sep or backend != self.backend:
            raise _fail(f"{field} {text!r} does not name backend {self.backend!r}")
        if not self.cluster and host != self.host:
            raise _fail(f"{field} {text!r} belongs to another host than {self.host!r}")
        if pool and pool not in self.pools:
            raise _fail(
                f"{field} {text!r} names pool {pool!r}; backend {self.backend} has "
                f"{', '.join(self.pools)}"
            )
        return f"{service}#{pool or self.pools[0]}"


def volume(value: Any, ident: BackendIdentity, max_gb: int) -> dict[str, Any]:
    """A contract volume object."""
    raw = _object(value, "volume")
    result = {
        "id": uuid_str(raw.get("id"), "volume.id"),
        "size": size(raw.get("size"), "volume.size", max_gb),
        "host": ident.check_host(raw.get("host"), "volume.host"),
        "name": _optional_text(raw.get("name"), "volume.name"),
        "volume_type": _volume_type(raw.get("volume_type")),
        "metadata": _metadata(raw.get("metadata"), "volume.metadata"),
        "snapshot_id": None,
        "source_volid": None,
        "image_id": None,
    }
    if raw.get("group_id") is not None:
        result["group_id"] = uuid_str(raw["group_id"], "volume.group_id")
    sources = [k for k in ("snapshot_id", "source_volid", "image_id") if raw.get(k)]
    if len(sources) > 1:
        raise _fail(f"volume has more than one source: {', '.join(sources)}")
    for key in sources:
        if key == "image_id":
            # The contract's image id is any string; the image service
            # decides what it names.
            result[key] = _text(raw[key], "volume.image_id")
        else:
            result[key] = uuid_str(raw[key], f"volume.{key}")
    return result


def snapshot(value: Any) -> dict[str, Any]:
    """A contract snapshot object."""
    raw = _object(value, "snapshot")
    return {
        "id": uuid_str(raw.get("id"), "snapshot.id"),
        "volume_id": uuid_str(raw.get("volume_id"), "snapshot.volume_id"),
        "name": _optional_text(raw.get("name"), "snapshot.name"),
        "metadata": _metadata(raw.get("metadata"), "snapshot.metadata"),
    }


def _bounded(value: Any, field: str, depth: int) -> None:
    """``value`` is JSON within the connector's bounds, at nesting ``depth``."""
    if value is None or isinstance(value, str | int | float | bool):
        return
    if not isinstance(value, list | dict):
        raise _fail(f"{field} must be JSON, not {type(value).__name__}")
    if depth > MAX_CONNECTOR_DEPTH:
        raise _fail(f"{field} is nested deeper than {MAX_CONNECTOR_DEPTH} levels")
    if len(value) > MAX_CONNECTOR_ITEMS:
        raise _fail(f"{field} has more than {MAX_CONNECTOR_ITEMS} items")
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(value, dict):
            _text(key, f"{field} key")
        _bounded(item, f"{field}[{key!r}]", depth + 1)


def connector(value: Any, *, optional: bool = False) -> dict[str, Any] | None:
    """A connector: ``host`` and optional initiator details, within
    :data:`MAX_CONNECTOR_BYTES`, :data:`MAX_CONNECTOR_ITEMS` and
    :data:`MAX_CONNECTOR_DEPTH`."""
    if value is None and optional:
        return None
    raw = _object(value, "connector")
    _bounded(raw, "connector", 1)
    host = _text(raw.get("host"), "connector.host")
    if not host:
        raise _fail("connector.host is empty")
    if "multipath" in raw:
        flag(raw["multipath"], "connector.multipath")
    size = len(json.dumps(raw, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > MAX_CONNECTOR_BYTES:
        raise _fail(f"connector is larger than {MAX_CONNECTOR_BYTES} bytes")
    return dict(raw)


def manage_ref(value: Any) -> dict[str, str]:
    """A manage reference: ``source-name`` or ``source-id``."""
    raw = _object(value, "ref")
    ref: dict[str, str] = {
        k: _text(raw[k], f"ref[{k!r}]")
        for k in ("source-name", "source-id")
        if k in raw
    }
    if not ref:
        raise _fail("ref needs source-name or source-id")
    return ref


def image_meta(value: Any) -> dict[str, Any]:
    """What to call an image made from a volume, and its disk format."""
    raw = _object(value, "image_meta")
    disk_format = raw.get("disk_format", "raw")
    if disk_format not in DISK_FORMATS:
        raise _fail(f"image_meta.disk_format must be one of {', '.join(DISK_FORMATS)}")
    return {
        "id": uuid_str(raw.get("id"), "image_meta.id"),
        "name": _optional_text(raw.get("name"), "image_meta.name"),
        "disk_format": disk_format,
        "container_format": "bare",
    }
