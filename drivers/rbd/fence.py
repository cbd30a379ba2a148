"""Fencing a worker that is gone but may still have writes in flight.

A worker killed with -9 may have sent RADOS operations that an OSD has not
applied yet; they can land after someone redid the same work (a half-made
image reappearing under a name just cleaned up). Every instance therefore
records who it is and its librados address in the pool's RBD metadata
(``volworker.instance.<host>@<backend>`` = ``"<instance> <address>"``), and
the address is blocklisted before anyone redoes that instance's work: the
OSDs then refuse whatever it still had in flight. This is what librbd
itself does to a lock holder it gives up on. Two moments do it:

- the next instance of the same ``<host>@<backend>`` at its start
  (:func:`fence_previous_instance`): a worker never runs twice for one, so
  the instance recorded is always a dead one;
- a member of the same cluster that takes over a dead member's work
  (:func:`fence_member`), only if the record still names that very instance:
  when the dead member's host has started again, its new instance fenced
  the old one itself and must not be fenced.
"""

from __future__ import annotations

import logging

from .cluster import Cluster

__all__ = ["fence_member", "fence_previous_instance"]

LOG = logging.getLogger(__name__)

KEY_PREFIX = "volworker.instance."
#: seconds the blocklist entry lasts; the dead instance's operations are
#: long gone by then
BLOCKLIST_SECONDS = 3600.0


def _recorded(cluster: Cluster, host: str) -> tuple[str, str] | None:
    """(instance, address) last recorded for ``host``."""
    try:
        value = cluster.rbd.RBD().pool_metadata_get(cluster.ioctx(), KEY_PREFIX + host)
    except KeyError:
        return None
    instance, _, address = value.rpartition(" ")
    return instance, address


def _blocklist(cluster: Cluster, address: str, whose: str) -> None:
    cluster.command(
        "osd blocklist", blocklistop="add", addr=address, expire=BLOCKLIST_SECONDS
    )
    cluster.wait_for_latest_osdmap()
    LOG.warning("Fenced %s (%s): the OSDs refuse its writes", whose, address)


def fence_previous_instance(cluster: Cluster, host: str, instance: str) -> None:
    """Blocklist the instance that last served ``host`` and record this one."""
    ours = cluster.address
    previous = _recorded(cluster, host)
    if previous and previous[1] != ours:
        _blocklist(cluster, previous[1], previous[0] or f"the previous {host}")
    cluster.rbd.RBD().pool_metadata_set(
        cluster.ioctx(), KEY_PREFIX + host, f"{instance} {ours}"
    )


def fence_member(cluster: Cluster, instance: str) -> None:
    """Blocklist ``instance`` (``<host>@<backend>/<incarnation>``), a member
    the cluster gave up, if it is still the one recorded for its host."""
    host = instance.rpartition("/")[0]
    recorded = _recorded(cluster, host)
    if recorded is None or recorded[0] != instance:
        LOG.info("%s has no address recorded; its host fenced it itself", instance)
        return
    if recorded[1] == cluster.address:
        return  # never fence ourselves
    _blocklist(cluster, recorded[1], instance)
