"""The parts of ``volworker-client`` (see :mod:`volworker.cmd.client`).

Each group of subcommands is a module with ``register(commands)``; to add a
group, write its module and list it in :data:`GROUPS`.
"""

from __future__ import annotations

from volworker.cmd._client import (
    capabilities,
    cluster,
    connections,
    groups,
    manage,
    snapshots,
    volumes,
)
from volworker.cmd._client.registry import Group

__all__ = ["GROUPS"]

GROUPS: tuple[Group, ...] = (
    volumes,
    snapshots,
    connections,
    manage,
    capabilities,
    cluster,
    groups,
)
