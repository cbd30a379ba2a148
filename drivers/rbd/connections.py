"""Attaching: the connection info Nova and os-brick read for an RBD volume,
and the record of which connectors a volume is attached to.

A client reaches the image with its own librbd; the worker hands out where
(monitors, pool/image) and as whom (cephx user, libvirt secret). It keeps
each attached connector in the image's own metadata
(``volworker.connector.<host>``), so that every member of a cluster sees it,
it survives restarts, and delete, revert and image copies refuse an attached
volume.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from volworker import exception

from .cluster import Cluster

__all__ = [
    "attached",
    "connection_info",
    "connector_host",
    "forget",
    "monitors",
    "remember",
]

KEY_PREFIX = "volworker.connector."


def connector_host(connector: Any) -> str:
    """The connector's ``host``, which tells one client from another."""
    host = connector.get("host") if isinstance(connector, dict) else None
    if not isinstance(host, str) or not host or len(host) > 255:
        raise exception.InvalidInput(
            reason=f"connector {connector!r} has no 'host' string"
        )
    return host


def attached(image: Any) -> list[str]:
    """The hosts the image is attached to."""
    return sorted(
        key.removeprefix(KEY_PREFIX)
        for key, _ in image.metadata_list()
        if key.startswith(KEY_PREFIX)
    )


def remember(image: Any, host: str, connector: dict[str, Any]) -> None:
    image.metadata_set(KEY_PREFIX + host, json.dumps(connector, sort_keys=True))


def forget(image: Any, host: str | None) -> None:
    """Forget one host's attachment, or with None every one."""
    for known in attached(image) if host is None else [host]:
        # a redone detach finds nothing to remove
        with contextlib.suppress(KeyError):
            image.metadata_remove(KEY_PREFIX + known)


def _host_port(addr: str) -> tuple[str, str]:
    """``"10.0.0.1:6789"`` or ``"[::1]:6789"``, without a ``/nonce``."""
    host, _, port = addr.split("/", 1)[0].rpartition(":")
    return host.strip("[]"), port


def monitors(cluster: Cluster) -> tuple[list[str], list[str]]:
    """The monitors' hosts and ports, as clients list them in mon_host.

    A client's librados takes an address without a protocol prefix for the
    legacy (v1) protocol unless its port is 3300, so each monitor's v1
    address is given where it has one.
    """
    hosts, ports = [], []
    for mon in cluster.command("mon dump")["mons"]:
        addrs = mon.get("public_addrs", {}).get("addrvec") or []
        v1 = [a["addr"] for a in addrs if a.get("type") == "v1"]
        addr = (v1 or [a["addr"] for a in addrs] or [mon["addr"]])[0]
        host, port = _host_port(addr)
        hosts.append(host)
        ports.append(port)
    return hosts, ports


def connection_info(
    cluster: Cluster, image: str, volume_id: str, secret_uuid: str | None
) -> dict[str, Any]:
    """What Nova's libvirt driver and os-brick's RBD connector read."""
    settings = cluster.settings
    hosts, ports = monitors(cluster)
    return {
        "driver_volume_type": "rbd",
        "data": {
            "name": f"{settings.pool}/{image}",
            "hosts": hosts,
            "ports": ports,
            "cluster_name": settings.cluster_name,
            "auth_enabled": settings.user is not None,
            "auth_username": settings.user,
            "secret_type": "ceph",
            "secret_uuid": secret_uuid,
            "volume_id": volume_id,
            "discard": True,
        },
    }
