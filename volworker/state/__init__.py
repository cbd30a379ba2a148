"""The worker's state: volumes, snapshots, attachments and the operation journal.

:class:`~volworker.state.store.Store` runs work items (functions of a
session, see :mod:`volworker.state.api`) on one thread, in order, committing
them in batches.
"""

from __future__ import annotations

from volworker.state.options import list_opts, register_opts
from volworker.state.store import (
    Store,
    StoreConnectionLost,
    StoreError,
    StoreNotRunning,
)

__all__ = [
    "Store",
    "StoreConnectionLost",
    "StoreError",
    "StoreNotRunning",
    "list_opts",
    "register_opts",
]
