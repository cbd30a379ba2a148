"""One truth for /healthz and the watchdog: ready only while serving, every
backend consuming and answering, and the store running; a loop that does
not answer is not healthy either."""

from __future__ import annotations

import asyncio
import pathlib
import socket
import time

import pytest

from volworker.health import Health, ask_loop


class Backend:
    def __init__(self) -> None:
        self.consuming = True
        self.failed_rounds = 0


def _health(store: dict[str, bool] | None = None) -> tuple[Health, Backend]:
    store = store if store is not None else {"running": True}
    health = Health(3, lambda: store["running"])
    backend = Backend()
    health.watch(
        "b1",
        consuming=lambda: backend.consuming,
        failed_rounds=lambda: backend.failed_rounds,
    )
    return health, backend


async def test_ready_only_while_serving() -> None:
    health, _ = _health()
    assert health.check().to_dict()["status"] == "unavailable"
    assert health.check().phase == "starting"
    health.serving("Serving b1")
    assert health.check().ok
    assert health.check().backends == {"b1": "ready"}
    health.stopping()
    assert not health.check().ok


async def test_nothing_served_is_not_healthy() -> None:
    health = Health(3, lambda: True)
    health.serving("Serving nothing")
    assert not health.check().ok


async def test_a_backend_that_stops_consuming_or_answering_is_not_healthy() -> None:
    store = {"running": True}
    health, backend = _health(store)
    health.serving("Serving b1")
    backend.consuming = False
    assert health.check().problems == ("b1: not consuming",)
    backend.consuming = True
    backend.failed_rounds = 2  # blips
    assert health.check().ok
    backend.failed_rounds = 3
    assert health.check().backends["b1"] == "its stats failed 3 rounds in a row"
    backend.failed_rounds = 0
    store["running"] = False
    assert health.check().problems == ("the state store is not running",)


async def test_a_loop_that_does_not_answer_is_not_healthy() -> None:
    health, _ = _health()
    health.serving("Serving b1")
    assert (await asyncio.to_thread(health.check_from_thread, 1.0)).ok
    asking = asyncio.get_running_loop().run_in_executor(
        None, health.check_from_thread, 0.1
    )
    time.sleep(0.3)  # the loop is busy elsewhere
    verdict = await asking
    assert not verdict.ok
    assert "did not answer within 0.1s" in verdict.problems[0]


async def test_ask_loop_on_the_loop_itself_runs_at_once() -> None:
    assert ask_loop(asyncio.get_running_loop(), lambda: 42, 0.1) == 42


async def test_watchdog_is_fed_only_while_healthy(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))

    def received() -> list[str]:
        lines = []
        while True:
            try:
                lines.extend(sock.recv(4096).decode().splitlines())
            except BlockingIOError:
                return lines

    health, backend = _health()
    health.serving("Serving b1")
    task = asyncio.create_task(health.watchdog(0.02))
    try:
        await asyncio.sleep(0.2)
        assert received().count("WATCHDOG=1") >= 3
        backend.failed_rounds = 3
        await asyncio.sleep(0.05)
        received()
        await asyncio.sleep(0.2)
        lines = received()
        assert "WATCHDOG=1" not in lines
        backend.failed_rounds = 0
        await asyncio.sleep(0.2)
        lines = received()
        assert "STATUS=Serving b1" in lines
        assert lines.count("WATCHDOG=1") >= 3
    finally:
        task.cancel()
        sock.close()
