"""Fixtures of the state store tests: every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from tests.conftest import require_service
from volworker.state import Store

PG_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def pg_admin() -> sa.Engine:
    return sa.create_engine(
        PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool
    )


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh ``volworker_test_*`` PostgreSQL database, dropped afterwards."""
    require_service("postgresql", 5432)
    name = f"volworker_test_{uuid.uuid4().hex[:12]}"
    admin = pg_admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/state/volworker.sqlite"


@pytest.fixture(params=["sqlite_url", "pg_url"], ids=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(request.param))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store(db_url)
    store.start()
    try:
        yield store
    finally:
        store.stop(timeout=30)


Call = Callable[..., Any]


@pytest.fixture
def call(store: Store) -> Call:
    """``call(fn, *args, **kwargs)``: run ``fn(session, ...)`` as one work item."""

    def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return store.submit(lambda session: fn(session, *args, **kwargs)).result(
            timeout=30
        )

    return _call


class Gate:
    """Holds the store thread in a work item until released.

    Items submitted while the thread is held all wait in the queue, so they
    make up the next batch together.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._entered = threading.Event()
        self._release = threading.Event()

    def _hold(self, session: Session) -> None:
        # A real transaction, so that the gate's batch commits too.
        session.execute(sa.text("SELECT 1"))
        self._entered.set()
        if not self._release.wait(30):
            raise TimeoutError("the gate was never released")

    def __enter__(self) -> Gate:
        self.future = self.store.submit(self._hold)
        assert self._entered.wait(30), "the store thread never reached the gate"
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.future.result(timeout=30)


@pytest.fixture
def gate(store: Store) -> Callable[[], Gate]:
    return lambda: Gate(store)


def new_id() -> str:
    return str(uuid.uuid4())


def volume_fields(**fields: Any) -> dict[str, Any]:
    """The fields of a volume the tests add, with ``fields`` changed."""
    return {
        "id": new_id(),
        "service": "host1@lvm",
        "host": "host1@lvm#pool1",
        "pool": "pool1",
        "size": 1,
        "status": "available",
    } | fields


def snapshot_fields(volume: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The fields of a snapshot of ``volume`` (its fields) the tests add."""
    return {
        "id": new_id(),
        "volume_id": volume["id"],
        "service": volume["service"],
        "size": volume["size"],
        "status": "creating",
    } | fields
