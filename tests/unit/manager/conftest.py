"""The manager's core, in one process: a real SQLite store, the fake driver,
and notifications and capabilities recorded instead of sent."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime
import functools
import pathlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from tests.contract.harness import make_config
from volworker.context import RequestContext
from volworker.coordination import Coordination
from volworker.image import LocalImageService
from volworker.manager import transitions
from volworker.manager.actions import commands
from volworker.manager.core import Manager
from volworker.manager.operation import Operation
from volworker.manager.request import Request
from volworker.manager.runtime import Runtime
from volworker.notify import Notifications
from volworker.state import Store, operations, records
from volworker.state.models import OperationRecord
from volworker_drivers.fake.driver import FakeDriver

SERVICE = "unit-host@fake1"


class RecordedNotifications(Notifications):
    """Notifications kept in a list: no broker in these tests."""

    def __init__(self) -> None:
        self.publisher_id = f"volworker.{SERVICE}"
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def emit(
        self,
        context: RequestContext,
        kind: str,
        action: str,
        phase: str,
        payload: dict[str, Any],
    ) -> None:
        self.sent.append((f"{kind}.{action}.{phase}", dict(payload)))

    def events(self, resource_id: str) -> list[str]:
        return [event for event, p in self.sent if p.get("id") == resource_id]


@dataclass
class StaticCapabilities:
    """The latest report as a publisher would keep it."""

    report: dict[str, Any] = field(
        default_factory=lambda: {
            "pools": [{"pool_name": "alpha", "online_extend_support": True}]
        }
    )
    requested: int = 0

    def latest(self) -> dict[str, Any]:
        return self.report

    async def discover(self) -> dict[str, Any]:
        return self.report

    def request(self) -> None:
        self.requested += 1


def fake_driver(tmp_path: pathlib.Path, **options: Any) -> FakeDriver:
    config = make_config(tmp_path, "fake1", FakeDriver, fake_pools=["alpha"], **options)
    driver = FakeDriver(config)
    driver.do_setup(RequestContext.admin())
    return driver


@pytest.fixture
def driver(tmp_path: pathlib.Path) -> FakeDriver:
    return fake_driver(tmp_path)


@pytest.fixture
def executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    pool = concurrent.futures.ThreadPoolExecutor(8)
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def runtime(
    tmp_path: pathlib.Path,
    store: Store,
    driver: FakeDriver,
    executor: concurrent.futures.ThreadPoolExecutor,
) -> Runtime:
    return Runtime(
        service=SERVICE,
        owner=SERVICE,
        driver=driver,
        store=store,
        notifications=RecordedNotifications(),
        images=LocalImageService(str(tmp_path / "images")),
        executor=executor,
        capabilities=StaticCapabilities(),
    )


def sent(runtime: Runtime) -> RecordedNotifications:
    assert isinstance(runtime.notifications, RecordedNotifications)
    return runtime.notifications


@contextlib.asynccontextmanager
async def running_manager(runtime: Runtime) -> AsyncIterator[Manager]:
    """A started manager of ``runtime``, stopped on the way out."""
    locks = Coordination(
        "file:///nowhere", "unit", "vw", 5, runtime.executor, per_volume=False
    )
    found = Manager(
        runtime,
        locks=locks,
        max_concurrent=4,
        journal_retention=datetime.timedelta(days=1),
    )
    found.start()
    try:
        yield found
    finally:
        await found.stop(5)


@pytest.fixture
async def manager(runtime: Runtime) -> AsyncIterator[Manager]:
    async with running_manager(runtime) as found:
        yield found


def new_volume(size: int = 1, **fields: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "size": size, "host": f"{SERVICE}#alpha", **fields}


async def stored_volume(
    runtime: Runtime, status: str = "available", driver: FakeDriver | None = None
) -> dict[str, Any]:
    """A new volume with a record ``status`` (and, given ``driver``, on the
    backend): the volume as a caller sends it."""
    volume = new_volume()
    row = await runtime.db(
        functools.partial(
            records.insert,
            kind="volume",
            id=volume["id"],
            service=runtime.service,
            host=volume["host"],
            pool="alpha",
            size=1,
            status=status,
        )
    )
    if driver is not None:
        driver.create_volume(row.to_volume())
    return volume


def request(action: str, **args: Any) -> Request:
    return Request(action, args, RequestContext(), message_id=uuid.uuid4().hex)


async def record(
    runtime: Runtime, kind: str, resource_id: str
) -> dict[str, Any] | None:
    row = await runtime.db(
        functools.partial(records.load, kind=kind, resource_id=resource_id)
    )
    return None if row is None else dict(row.to_dict())


async def journal(runtime: Runtime) -> list[dict[str, Any]]:
    """Every operation of the service, in journal order, finished or not."""

    def work(session: Any) -> list[dict[str, Any]]:
        query = select(OperationRecord).order_by(OperationRecord.seq)
        return [row.to_dict() for row in session.scalars(query)]

    return await runtime.db(work)


#: the owner of what an earlier incarnation of the worker left unfinished
EARLIER = f"{SERVICE}/crashed"


async def journaled(
    runtime: Runtime, req: Request, state: str = "accepted", owner: str | None = None
) -> int:
    """Journal ``req`` as the manager does at intake (for ``owner``, by
    default the runtime's), then leave it ``state``."""
    owner = owner or runtime.owner
    command = commands()[req.action]
    accepted = await runtime.db(
        functools.partial(
            transitions.accept,
            service=runtime.service,
            owner=owner,
            request=req,
            kind=command.kind,
            resource_id=req.args[command.kind]["id"],
            creates=command.creates,
        )
    )
    assert accepted is not None
    if state != "accepted":
        await runtime.db(
            functools.partial(
                operations.set_state, seq=accepted.seq, state=state, owner=owner
            )
        )
    return accepted.seq


def operation(runtime: Runtime, req: Request, seq: int) -> Operation:
    return Operation(runtime, req, seq, commands()[req.action])


async def until(predicate: Any, timeout: float = 10.0) -> None:
    """Wait on the loop until ``predicate()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        await asyncio.sleep(0.01)
