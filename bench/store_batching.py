"""How much group commit buys: journal inserts per second through the store.

Each work item inserts one journal row (``operations.insert``), submitted
from an asyncio loop one item per ``store.run`` call, the way the manager
journals incoming messages. The same run measures:

- ``one txn/item``: ``batch_max=1``, one transaction (one fsync) per item,
  the baseline;
- ``group commit``: the default ``batch_max``, whatever is queued commits
  together;

each with 1 (awaited one after the other), 10, 100 and all items in flight.
Ratios are against the baseline at the same concurrency, measured in the same
run on the same disk. SQLite, ``synchronous=FULL``, WAL.

    .venv/bin/python bench/store_batching.py [--items 2000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
import uuid

from sqlalchemy.orm import Session

from volworker.state import Store, operations


def _insert(session: Session) -> int | None:
    return operations.insert(
        session,
        service="bench@lvm",
        action="create_volume",
        resource_type="volume",
        resource_id=str(uuid.uuid4()),
        message_id=uuid.uuid4().hex,
        args={"volume": {"size": 1}},
        owner="bench",
    )


async def _drive(store: Store, items: int, in_flight: int) -> float:
    """Seconds to journal ``items`` rows with ``in_flight`` awaiting at once."""
    limit = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with limit:
            await store.run(_insert)

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(items)))
    return time.perf_counter() - start


def _measure(directory: str, batch_max: int, items: int, in_flight: int) -> float:
    path = os.path.join(directory, f"b{batch_max}-f{in_flight}.sqlite")
    store = Store(f"sqlite:///{path}", sqlite_synchronous="FULL", batch_max=batch_max)
    store.start()
    try:
        asyncio.run(_drive(store, 50, in_flight))  # warm up
        seconds = asyncio.run(_drive(store, items, in_flight))
    finally:
        store.stop()
    return items / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--dir", help="where the databases go (a real disk)")
    args = parser.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    base = args.dir or os.path.join(here, "results")
    os.makedirs(base, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="store-batching-", dir=base)
    try:
        header = ("in flight", "one txn/item", "group commit", "ratio")
        print("{:>9} {:>14} {:>14} {:>7}".format(*header))
        for in_flight in (1, 10, 100, args.items):
            single = _measure(directory, 1, args.items, in_flight)
            grouped = _measure(directory, 500, args.items, in_flight)
            label = "all" if in_flight == args.items else str(in_flight)
            print(
                f"{label:>9} {single:>10.0f} /s {grouped:>10.0f} /s "
                f"{grouped / single:>6.1f}x"
            )
    finally:
        shutil.rmtree(directory)


if __name__ == "__main__":
    main()
