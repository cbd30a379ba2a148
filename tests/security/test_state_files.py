"""A worker started with a permissive umask (not under systemd) still makes
its state directory 0700 and its database, WAL files included, 0600."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Callable

from tests.security.conftest import settled
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import Worker


def test_state_is_private_whatever_the_umask(
    make_worker: Callable[..., Worker], client: Callable[[Worker], VolumeAPI]
) -> None:
    worker = make_worker({"fake1": {"volume_driver": "fake"}})
    state = worker.dir / "state"
    assert not state.exists()
    previous = os.umask(0)
    try:
        worker.start()  # the child inherits the umask
    finally:
        os.umask(previous)
    worker.wait_ready()
    api = client(worker)
    server = worker.server("fake1")
    volume = {"id": str(uuid.uuid4()), "size": 1, "host": server}
    api.create_volume(volume)
    assert settled(api, server, volume["id"])["status"] == "available"

    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    database = [p for p in state.iterdir() if p.name.startswith("volworker.sqlite")]
    assert {p.name for p in database} >= {"volworker.sqlite", "volworker.sqlite-wal"}
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in database}
    assert modes == {name: 0o600 for name in modes}
    assert worker.stop() == 0
