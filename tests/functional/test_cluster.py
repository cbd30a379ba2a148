"""A cluster: two worker processes serving one backend, with one PostgreSQL
database and Redis locks. Operations on shared volumes arrive through both
members and the cluster queue at once; a volume's operations never overlap,
none fails, and either member answers for every volume."""

from __future__ import annotations

import itertools
import pathlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import require_service
from tests.functional.conftest import new_snapshot, new_volume
from tests.unit.state.conftest import pg_url  # noqa: F401 - a fixture
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker

VOLUMES = 8
SNAPSHOTS_PER_VOLUME = 4


@pytest.fixture
def cluster(
    tmp_path: pathlib.Path,
    pg_url: str,  # noqa: F811 - the fixture imported above
    make_worker: Callable[..., Worker],
) -> Iterator[tuple[Worker, Worker]]:
    require_service("redis", 6379)
    backend = {"b1": {"volume_driver": "file", "file_pools": f"p:{tmp_path / 'pool'}"}}
    common = {
        "defaults": {"cluster": "c1", "max_concurrent_operations": 4},
        "extra": {
            "database": {"connection": pg_url},
            "coordination": {"backend_url": "redis://127.0.0.1:6379"},
        },
    }
    first = make_worker(backend, name="a", **common)
    second = make_worker(backend, name="b", topic=first.topic, **common)
    first.start().wait_ready()
    second.start().wait_ready()
    yield first, second
    assert first.stop() == 0
    assert second.stop() == 0


def _intervals(pg: str) -> dict[str, list[tuple[Any, Any, str]]]:
    """Per volume, the (start, end, owner) of every operation touching it."""
    engine = sa.create_engine(pg)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT action, resource_id, args, started_at, finished_at, owner "
                "FROM operations WHERE state = 'done'"
            )
        ).all()
    engine.dispose()
    by_volume: dict[str, list[tuple[Any, Any, str]]] = defaultdict(list)
    for action, resource_id, args, started, finished, owner in rows:
        keys = {args["snapshot"]["volume_id"]} if "snapshot" in args else {resource_id}
        if action == "create_volume" and args["volume"].get("source_volid"):
            keys.add(args["volume"]["source_volid"])
        for key in keys:
            by_volume[key].append((started, finished, owner))
    return by_volume


def _all_done(events: Notifications, event: str, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        events.wait_event(event, obj["id"], timeout=60)


def _assert_never_overlapped(pg: str, members: set[str]) -> None:
    intervals = _intervals(pg)
    # An owner is one incarnation of a member: <host>@<backend>/<incarnation>.
    owners = {
        owner.partition("/")[0] for spans in intervals.values() for _, _, owner in spans
    }
    assert owners == members  # both members did work
    for volume_id, spans in intervals.items():
        spans.sort()
        for (_, end, _), (start, _, _) in itertools.pairwise(spans):
            assert end <= start, f"operations on {volume_id} overlapped"


def test_cluster_members_share_volumes_and_never_overlap(
    cluster: tuple[Worker, Worker],
    pg_url: str,  # noqa: F811 - the fixture imported above
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[..., Notifications],
) -> None:
    first, second = cluster
    api = client(first)
    events = notifications(first, second)
    servers = [first.server("b1"), second.server("b1"), "c1@b1"]
    rotation = itertools.cycle(servers)

    volumes = [new_volume(first, "b1", host=next(rotation)) for _ in range(VOLUMES)]
    for volume in volumes:
        api.create_volume(volume)
    _all_done(events, "volume.create.end", volumes)

    # Snapshots and clones of every volume, sent through every queue at once.
    snapshots = [new_snapshot(v) for v in volumes for _ in range(SNAPSHOTS_PER_VOLUME)]
    clones = [
        new_volume(first, "b1", host=next(rotation), source_volid=v["id"])
        for v in volumes
    ]
    for snapshot in snapshots:
        api.create_snapshot(next(rotation), snapshot)
    for clone in clones:
        api.create_volume(clone)
    _all_done(events, "snapshot.create.end", snapshots)
    _all_done(events, "volume.create.end", clones)

    for server in servers:  # every member answers for every volume
        for volume in volumes + clones:
            assert api.get_volume(server, volume["id"])["status"] == "available"

    for snapshot in snapshots:
        api.delete_snapshot(next(rotation), snapshot)
    _all_done(events, "snapshot.delete.end", snapshots)
    for volume in volumes + clones:
        api.delete_volume({**volume, "host": next(rotation)})
    _all_done(events, "volume.delete.end", volumes + clones)

    errors = [m["event_type"] for m in events.events() if ".error" in m["event_type"]]
    assert errors == []
    for server in servers:
        assert api.list_volumes(server) == []
    _assert_never_overlapped(pg_url, {first.server("b1"), second.server("b1")})
