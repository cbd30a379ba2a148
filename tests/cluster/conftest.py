"""A cluster of real worker processes: one PostgreSQL database, Redis for
tooz, each member with a short member_timeout so that a takeover comes
within seconds."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.conftest import require_service
from tests.functional.conftest import (  # noqa: F401 - fixtures
    client,
    make_worker,
    notifications,
)
from tests.unit.state.conftest import pg_url  # noqa: F401 - a fixture
from volworker.testing.worker import Worker

#: seconds a member may be silent before its work is taken over
MEMBER_TIMEOUT = 4.0
BACKEND = "b1"


class Cluster:
    """Members of ``<name>@b1`` sharing a topic, a database and Redis."""

    def __init__(
        self,
        make: Callable[..., Worker],
        database: str,
        backend: dict[str, Any],
    ) -> None:
        self.name = f"c{uuid.uuid4().hex[:8]}"
        self.pg_url = database
        self.backend = backend
        self.topic = f"vwtest-{uuid.uuid4().hex[:10]}"
        self._make = make
        self.members: list[Worker] = []

    @property
    def server(self) -> str:
        return f"{self.name}@{BACKEND}"

    def add(self, name: str, **defaults: Any) -> Worker:
        worker = self._make(
            {BACKEND: self.backend},
            name=name,
            topic=self.topic,
            defaults={
                "cluster": self.name,
                "max_concurrent_operations": 4,
                "graceful_shutdown_timeout": 10,
                **defaults,
            },
            extra={
                "database": {"connection": self.pg_url},
                "coordination": {
                    "backend_url": "redis://127.0.0.1:6379",
                    "member_timeout": MEMBER_TIMEOUT,
                },
            },
        )
        self.members.append(worker)
        return worker

    def journal(self) -> list[dict[str, Any]]:
        """Every journal entry, oldest first (read straight from the database)."""
        engine = sa.create_engine(self.pg_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT seq, message_id, request_id, action, resource_id, "
                        "state, owner, error FROM operations ORDER BY seq"
                    )
                )
                return [dict(row._mapping) for row in rows]
        finally:
            engine.dispose()


@pytest.fixture
def cluster_of(
    make_worker: Callable[..., Worker],  # noqa: F811 - the fixture imported above
    pg_url: str,  # noqa: F811 - the fixture imported above
) -> Iterator[Callable[[dict[str, Any]], Cluster]]:
    require_service("redis", 6379)
    made: list[Cluster] = []

    def make(backend: dict[str, Any]) -> Cluster:
        found = Cluster(make_worker, pg_url, backend)
        made.append(found)
        return found

    yield make


def member_of(owner: str) -> str:
    """``<host>@<backend>`` of an owner ``<host>@<backend>/<incarnation>``."""
    return owner.partition("/")[0]


def fake_backend(**options: Any) -> dict[str, Any]:
    return {"volume_driver": "fake", **options}


def file_backend(pool: pathlib.Path, **options: Any) -> dict[str, Any]:
    return {
        "volume_driver": "file",
        "file_pools": f"p:{pool}",
        "file_shared_storage": True,
        **options,
    }
