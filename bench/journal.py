"""CPU a create's journal work costs: accept and finish, through the store.

Each create is journaled as the manager journals one: ``transitions.accept``
(the volume's record and the journal entry) deferred to the store from an
asyncio loop, then ``transitions.finish`` (the entry done, the record
available) the same way, ``--in-flight`` creates at a time, so the store
commits them in groups as it does under load. The figure is the process's
CPU time (every thread: the loop, the store thread, SQLite) per create, the
median of ``--rounds``; SQLite, ``synchronous=FULL``, WAL.

It has no baseline of its own: it is for comparing two source trees (run
it from each tree's directory, alternately) when a change to the state
store is meant to save CPU; ``bench/changes.md`` records what it showed.

    .venv/bin/python -m bench.journal [--creates 4000] [--in-flight 32]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import shutil
import statistics
import tempfile
import time
import uuid

from volworker.context import RequestContext
from volworker.manager import transitions
from volworker.manager.request import Request
from volworker.state import Store
from volworker.state.models import utcnow

SERVICE = "bench@fake"
OWNER = "bench@fake:1"


def _request() -> Request:
    volume = {"id": str(uuid.uuid4()), "size": 1, "host": f"{SERVICE}#p"}
    volume |= {"name": "bench", "metadata": {}}
    return Request(
        "create_volume",
        {"volume": volume},
        RequestContext(),
        message_id=uuid.uuid4().hex,
    )


async def _create(store: Store, request: Request) -> None:
    volume_id = request.args["volume"]["id"]
    accepted = await store.run(
        functools.partial(
            transitions.accept,
            service=SERVICE,
            owner=OWNER,
            request=request,
            kind="volume",
            resource_id=volume_id,
            creates=True,
        )
    )
    assert isinstance(accepted, transitions.Accepted), accepted
    await store.run(
        functools.partial(
            transitions.finish,
            service=SERVICE,
            owner=OWNER,
            seq=accepted.seq,
            kind="volume",
            resource_id=volume_id,
            row=accepted.row,
            fields={"status": "available", "provider_location": "bench"},
            started_at=utcnow(),
        )
    )


async def _drive(store: Store, creates: int, in_flight: int) -> None:
    limit = asyncio.Semaphore(in_flight)

    async def one(request: Request) -> None:
        async with limit:
            await _create(store, request)

    await asyncio.gather(*(one(r) for r in [_request() for _ in range(creates)]))


def _round(directory: str, creates: int, in_flight: int, index: int) -> float:
    """CPU seconds per create of one round, on a new database."""
    store = Store(f"sqlite:///{directory}/journal-{index}.sqlite")
    store.start()
    try:
        asyncio.run(_drive(store, 100, in_flight))  # warm up: compile, cache
        began = time.process_time()
        asyncio.run(_drive(store, creates, in_flight))
        return (time.process_time() - began) / creates
    finally:
        store.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=4000)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="journal-")
    try:
        per = [
            _round(directory, args.creates, args.in_flight, i)
            for i in range(args.rounds)
        ]
    finally:
        shutil.rmtree(directory)
    print(
        f"journal CPU per create: {statistics.median(per) * 1e6:.0f} us "
        f"(rounds: {', '.join(f'{p * 1e6:.0f}' for p in per)}; "
        f"{args.creates} creates, {args.in_flight} in flight)"
    )


if __name__ == "__main__":
    main()
