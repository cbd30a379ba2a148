"""Members of a cluster never touch each other's live work, take over the
work of a member that died, and a member that comes back after being taken
over does not do that work a second time."""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.cluster.conftest import BACKEND, MEMBER_TIMEOUT, Cluster, fake_backend
from tests.faults.raw import RawPublisher, envelope, request
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import Worker

LONG = 3.0  # seconds a slow create takes


def _volumes(server: str, count: int) -> list[dict[str, Any]]:
    return [{"id": str(uuid.uuid4()), "size": 1, "host": server} for _ in range(count)]


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)
    return found


def _entries(cluster: Cluster, ids: set[str]) -> list[dict[str, Any]]:
    return [e for e in cluster.journal() if e["resource_id"] in ids]


def _all(cluster: Cluster, ids: set[str], states: set[str]) -> bool:
    found = _entries(cluster, ids)
    return len(found) == len(ids) and all(e["state"] in states for e in found)


def test_a_restarting_member_leaves_a_live_peers_work_alone(
    cluster_of: Callable[[dict[str, Any]], Cluster],
    client: Callable[[Worker], VolumeAPI],
) -> None:
    cluster = cluster_of(fake_backend(fake_method_latency=f"create_volume:{LONG}"))
    a, b = cluster.add("a").start(), cluster.add("b").start()
    a.wait_ready()
    b.wait_ready()
    volumes = _volumes(a.server(BACKEND), 6)
    ids = {v["id"] for v in volumes}
    api = client(a)
    for volume in volumes:  # to a's own queue: a runs them, slowly
        api.create_volume(volume)
    # A create is journaled and runs without a write in between (its record
    # was made at accept), so "accepted" is as far as the journal shows.
    _wait(lambda: _all(cluster, ids, {"accepted"}), 20, "a to accept the creates")
    assert b.stop() == 0
    b.start().wait_ready()
    _wait(lambda: _all(cluster, ids, {"done"}), 60, "a to finish its creates")
    entries = _entries(cluster, ids)
    assert {e["owner"].partition("/")[0] for e in entries} == {a.server(BACKEND)}
    assert len({e["owner"] for e in entries}) == 1  # never re-owned
    assert Counter(e["resource_id"] for e in entries) == Counter(ids)
    assert "Recovering" not in b.log()
    assert a.stop() == 0
    assert b.stop() == 0


def test_a_dead_members_work_is_taken_over_once_and_it_comes_back(
    cluster_of: Callable[[dict[str, Any]], Cluster],
    client: Callable[[Worker], VolumeAPI],
) -> None:
    cluster = cluster_of(fake_backend(fake_method_latency=f"create_volume:{LONG}"))
    a, b = cluster.add("a").start(), cluster.add("b").start()
    a.wait_ready()
    b.wait_ready()
    volumes = _volumes(b.server(BACKEND), 6)
    ids = {v["id"] for v in volumes}
    api = client(b)
    for volume in volumes:  # to b's own queue: b accepts them
        api.create_volume(volume)
    _wait(lambda: _all(cluster, ids, {"accepted", "running"}), 20, "b to accept")
    killed = time.monotonic()
    b.signal(signal.SIGKILL)
    b.wait(10)
    _wait(lambda: _all(cluster, ids, {"done"}), MEMBER_TIMEOUT + 60, "a takeover")
    took = time.monotonic() - killed
    entries = _entries(cluster, ids)
    owners = {e["owner"] for e in entries}
    assert {o.partition("/")[0] for o in owners} == {a.server(BACKEND)}, owners
    assert f"has been silent for over {MEMBER_TIMEOUT:.0f}s" in a.log()
    assert took > MEMBER_TIMEOUT
    print(f"taken over and done {took:.1f}s after the kill")

    # b comes back: it finds nothing of its own to redo, and serves again.
    b.start().wait_ready()
    after = _volumes(b.server(BACKEND), 1)
    api.create_volume(after[0])
    _wait(lambda: _all(cluster, {after[0]["id"]}, {"done"}), 30, "b to serve again")
    assert "Recovering" not in b.log().split("Backend b1 ready")[-1]
    entries = _entries(cluster, ids | {after[0]["id"]})
    assert Counter(e["resource_id"] for e in entries) == Counter(ids | {after[0]["id"]})
    assert all(e["state"] == "done" for e in entries)
    assert a.stop() == 0
    assert b.stop() == 0


def test_the_same_cast_delivered_to_two_members_is_done_once(
    cluster_of: Callable[[dict[str, Any]], Cluster],
) -> None:
    cluster = cluster_of(fake_backend())
    a, b = cluster.add("a").start(), cluster.add("b").start()
    a.wait_ready()
    b.wait_ready()
    volume = _volumes(cluster.server, 1)[0]
    message = request("create_volume", {"volume": volume})
    for member in (a, b):  # the same message id, as after a redelivery
        RawPublisher(cluster.topic, member.server(BACKEND)).publish(envelope(message))
    _wait(lambda: _all(cluster, {volume["id"]}, {"done"}), 30, "the create")
    time.sleep(1)  # the copy, if it were to run, would show by now
    entries = _entries(cluster, {volume["id"]})
    assert [e["message_id"] for e in entries] == [message["_unique_id"]]
    assert a.stop() == 0
    assert b.stop() == 0
