"""Fencing the worker's previous instance at start.

A worker killed with -9 may have sent RADOS operations that an OSD has not
applied yet; they can land after the restarted worker redid the same work
(a half-made image reappearing under a name it just cleaned up). Every
instance therefore records its librados address in the pool's RBD metadata
(``volworker.instance.<host>@<backend>``), and the next instance of the same
backend blocklists the address it finds there before it touches anything:
the OSDs then refuse whatever the dead instance still had in flight. This is
what librbd itself does to a lock holder it gives up on. A worker never runs
twice for one ``<host>@<backend>`` (it refuses to start), so the address
recorded is always a dead instance's.
"""

from __future__ import annotations

import logging

from .cluster import Cluster

__all__ = ["fence_previous_instance"]

LOG = logging.getLogger(__name__)

KEY_PREFIX = "volworker.instance."
#: seconds the blocklist entry lasts; the dead instance's operations are
#: long gone by then
BLOCKLIST_SECONDS = 3600.0


def fence_previous_instance(cluster: Cluster, owner: str) -> None:
    """Blocklist the instance that last served ``owner`` and record this one."""
    api, ioctx = cluster.rbd.RBD(), cluster.ioctx()
    key = KEY_PREFIX + owner
    ours = cluster.address
    try:
        previous = api.pool_metadata_get(ioctx, key)
    except KeyError:
        previous = None
    if previous and previous != ours:
        cluster.command(
            "osd blocklist", blocklistop="add", addr=previous, expire=BLOCKLIST_SECONDS
        )
        cluster.wait_for_latest_osdmap()
        LOG.info("Fenced %s, the previous instance of %s", previous, owner)
    api.pool_metadata_set(ioctx, key, ours)
