"""Python's garbage collector, set for a long-running server once it serves.

The cyclic collector visits every object it tracks in a generation each
time it collects that generation. After start, the oldest generation holds
the worker's whole heap: the modules of SQLAlchemy, oslo and kombu, the
configuration, the engines, the driver. None of it ever becomes garbage,
yet each full collection walked all of it, with every thread stopped (50
to 80 ms each, four times in 8,000 creates), and the youngest generation
was collected after every 700 new objects (about 390 times in 8,000
creates). :func:`settle`, called once the worker serves, collects what
start left behind, freezes the rest out of the collector's sight
(``gc.freeze``), and lets the youngest generation grow to
``YOUNG_THRESHOLD`` objects before it is collected. Reference cycles are
still collected, in larger batches; ``bench/changes.md`` has the figures.
"""

from __future__ import annotations

import gc
import logging

__all__ = ["YOUNG_THRESHOLD", "settle"]

LOG = logging.getLogger(__name__)

#: new objects before the youngest generation is collected (Python's: 700)
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Collect once, freeze what is left, collect the young less often."""
    collected = gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
    LOG.debug(
        "Collected %d objects after start; %d frozen out of the collector's sight",
        collected,
        gc.get_freeze_count(),
    )
