"""A dead member's attachments: exported again from the member that takes
over its work when the pools are shared storage, declared lost when the
exports cannot move."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.cluster.conftest import (
    BACKEND,
    MEMBER_TIMEOUT,
    Cluster,
    fake_backend,
    file_backend,
)
from tests.contract import nbdclient
from tests.faults.audit import nbd_servers
from tests.functional.test_lifecycle import wait_status
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Notifications
from volworker.testing.worker import Worker

MiB = 1024**2
CONNECTOR = {"host": "compute-1", "initiator": "iqn.2026-11.test:compute-1"}


def _attachment(cluster: Cluster, volume_id: str) -> dict[str, Any] | None:
    engine = sa.create_engine(cluster.pg_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT connection_info, served_by, lost FROM attachments "
                    "WHERE volume_id = :v"
                ),
                {"v": volume_id},
            ).first()
    finally:
        engine.dispose()
    return None if row is None else dict(row._mapping)


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)
    return found


def _kill_with_its_exports(member: Worker) -> None:
    """kill -9 the member and its NBD servers: its machine is gone."""
    member.signal(signal.SIGKILL)
    member.wait(10)
    for pid in nbd_servers(member.dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _attached_on(
    api: VolumeAPI, member: Worker, cluster: Cluster
) -> tuple[dict[str, Any], dict[str, Any]]:
    volume = {"id": str(uuid.uuid4()), "size": 1, "host": member.server(BACKEND)}
    api.create_volume(volume)
    wait_status(api, member.server(BACKEND), volume["id"], "available")
    info = api.initialize_connection(volume, CONNECTOR)
    found = _attachment(cluster, volume["id"])
    assert found is not None
    assert found["served_by"].startswith(member.server(BACKEND) + "/")
    return volume, info


def test_on_shared_storage_the_taker_exports_the_attachment_again(
    cluster_of: Callable[[dict[str, Any]], Cluster],
    client: Callable[[Worker], VolumeAPI],
    tmp_path: pathlib.Path,
) -> None:
    cluster = cluster_of(file_backend(tmp_path / "shared-pool"))
    a, b = cluster.add("a").start(), cluster.add("b").start()
    a.wait_ready()
    b.wait_ready()
    volume, before = _attached_on(client(b), b, cluster)
    nbdclient.write(before, 0, MiB, 0x5A)
    _kill_with_its_exports(b)

    def moved() -> dict[str, Any] | None:
        """Re-owned by a, and exported again from there (new connection)."""
        found = _attachment(cluster, volume["id"])
        if found is None or not found["served_by"]:
            return None
        again = found["connection_info"] != before
        return (
            found
            if again and found["served_by"].startswith(a.server(BACKEND))
            else None
        )

    found = _wait(moved, MEMBER_TIMEOUT + 60, "a to export the attachment again")
    assert found["lost"] is None
    after = client(a).initialize_connection(
        {**volume, "host": a.server(BACKEND)}, CONNECTOR
    )
    assert after == found["connection_info"]
    assert nbdclient.holds(after, 0, MiB, 0x5A)
    status = client(a).get_volume(a.server(BACKEND), volume["id"])["status"]
    assert status == "in-use"
    client(a).terminate_connection({**volume, "host": a.server(BACKEND)}, CONNECTOR)
    assert a.stop() == 0


def test_with_node_local_exports_the_attachment_is_declared_lost(
    cluster_of: Callable[[dict[str, Any]], Cluster],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[..., Notifications],
) -> None:
    cluster = cluster_of(fake_backend())
    a, b = cluster.add("a").start(), cluster.add("b").start()
    a.wait_ready()
    b.wait_ready()
    events = notifications(a, b)
    volume, _ = _attached_on(client(b), b, cluster)
    _kill_with_its_exports(b)

    def lost() -> dict[str, Any] | None:
        found = _attachment(cluster, volume["id"])
        return found if found and found["lost"] else None

    found = _wait(lost, MEMBER_TIMEOUT + 60, "the attachment to be declared lost")
    assert "compute-1" in found["lost"]
    assert found["served_by"].startswith(a.server(BACKEND) + "/")
    message = events.wait_event("volume.attach.error", volume["id"], timeout=30)
    assert "lost" in message["payload"]["error"]
    cluster_view = client(a).get_capabilities(a.server(BACKEND))["cluster"]
    mine = [m for m in cluster_view["members"] if m["owner"] == found["served_by"]]
    assert [m["lost_attachments"] for m in mine] == [1]
    assert a.stop() == 0


def test_a_detach_reaching_another_member_is_handed_to_the_server(
    cluster_of: Callable[[dict[str, Any]], Cluster],
    client: Callable[[Worker], VolumeAPI],
    tmp_path: pathlib.Path,
) -> None:
    cluster = cluster_of(file_backend(tmp_path / "shared-pool"))
    a, b = cluster.add("a").start(), cluster.add("b").start()
    a.wait_ready()
    b.wait_ready()
    volume, info = _attached_on(client(a), a, cluster)
    assert nbd_servers(a.dir)
    # b serves no attachment of the volume: it hands the calls to a.
    on_b = {**volume, "host": b.server(BACKEND)}
    assert client(b).initialize_connection(on_b, CONNECTOR) == info
    client(b).terminate_connection(on_b, CONNECTOR)
    assert _attachment(cluster, volume["id"]) is None
    assert nbd_servers(a.dir) == {} and nbd_servers(b.dir) == {}
    assert "handed over" in b.log()
    assert client(b).get_volume(b.server(BACKEND), volume["id"])["status"] == (
        "available"
    )
    assert a.stop() == 0
    assert b.stop() == 0
