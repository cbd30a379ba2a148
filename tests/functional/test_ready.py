"""Ready means ready: nothing is consumed before the backend is set up, and a
backend that cannot be set up says so and waits for nothing."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import kombu

from tests.functional.conftest import new_volume
from tests.functional.test_lifecycle import wait_status
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import BROKER
from volworker.testing.worker import Worker


def _queued(queue_name: str) -> int:
    with kombu.Connection(BROKER) as conn:
        _, count, _ = conn.default_channel.queue_declare(queue_name, passive=True)
        return int(count)


def test_ready_only_after_transient_setup_failures(
    make_worker: Callable[..., Worker],
) -> None:
    worker = make_worker(
        {"b1": {"volume_driver": "fake", "fake_setup_transient_failures": 2}},
        defaults={"setup_retry_max_delay": 0.2},
    ).start()
    worker.wait_ready()
    log = worker.log()
    assert log.count("Backend b1 is not available yet") == 2
    assert log.index("is not available yet") < log.index("Backend b1 ready")
    assert "STATUS=Serving b1" in worker.notified
    assert "STATUS=Setting up backend b1" in worker.notified
    retrying = [line for line in worker.notified if "not available yet" in line]
    assert len(retrying) == 2 and "attempt 1" in retrying[0]
    assert any(line.startswith("EXTEND_TIMEOUT_USEC=") for line in worker.notified)
    assert worker.stop() == 0
    assert "STOPPING=1" in worker.notified


def test_permanent_setup_error_fails_at_once(
    make_worker: Callable[..., Worker],
) -> None:
    worker = make_worker(
        {
            "b1": {
                "volume_driver": "fake",
                "fake_failures": "do_setup:VolumeBackendAPIException",
            }
        }
    ).start("--backend", "b1")
    assert worker.wait(30) != 0
    assert "READY=1" not in worker.notified
    lines = [
        line for line in worker.log().splitlines() if "could not be set up" in line
    ]
    assert len(lines) == 1 and "Backend b1" in lines[0] and "do_setup fails" in lines[0]
    assert "not available yet" not in worker.log()


def test_broken_pool_keeps_requests_queued_until_fixed(
    tmp_path: pathlib.Path,
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
) -> None:
    broken = {
        "b1": {"volume_driver": "file", "file_pools": f"p:{tmp_path}/no/such/pool"}
    }
    worker = make_worker(broken).start("--backend", "b1")
    assert worker.wait(30) != 0, worker.log()
    assert "READY=1" not in worker.notified
    line = next(ln for ln in worker.log().splitlines() if "could not be set up" in ln)
    assert "b1" in line and "no/such" in line

    api = client(worker)
    volumes = [new_volume(worker, "b1") for _ in range(3)]
    for volume in volumes:
        api.create_volume(volume)
    queue = f"{worker.topic}.{worker.server('b1')}"
    deadline = time.monotonic() + 10
    while _queued(queue) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _queued(queue) == 3  # waiting, not consumed by the failed worker

    (tmp_path / "no" / "such").mkdir(parents=True)
    worker.start("--backend", "b1").wait_ready()
    for volume in volumes:
        wait_status(api, worker.server("b1"), volume["id"], "available")
    assert _queued(queue) == 0


def test_one_broken_backend_does_not_stop_the_others(
    tmp_path: pathlib.Path,
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
) -> None:
    worker = make_worker(
        {
            "good": {"volume_driver": "fake"},
            "bad": {"volume_driver": "file", "file_pools": f"p:{tmp_path}/missing/p"},
        }
    ).start()
    worker.wait_ready()
    assert "STATUS=Serving good; failed: bad" in worker.notified
    api = client(worker)
    volume = new_volume(worker, "good")
    api.create_volume(volume)
    wait_status(api, worker.server("good"), volume["id"], "available")
    assert worker.stop() == 0


def test_no_backend_can_start(
    tmp_path: pathlib.Path, make_worker: Callable[..., Worker]
) -> None:
    worker = make_worker(
        {"bad": {"volume_driver": "file", "file_pools": f"p:{tmp_path}/missing/p"}}
    ).start()
    assert worker.wait(30) == 1
    assert any(
        line.startswith("STATUS=No backend could start") for line in worker.notified
    )


def test_unknown_driver_is_named(make_worker: Callable[..., Worker]) -> None:
    worker = make_worker({"b1": {"volume_driver": "nosuchdriver"}}).start()
    assert worker.wait(30) == 1
    assert "nosuchdriver" in worker.log()


def test_a_second_process_for_the_same_backend_refuses_to_start(
    make_worker: Callable[..., Worker],
) -> None:
    first = make_worker({"b1": {"volume_driver": "fake"}}).start().wait_ready()
    second = make_worker(
        {"b1": {"volume_driver": "fake"}},
        host=first.host,
        topic=first.topic,
        extra={"coordination": {"backend_url": f"file://{first.dir}/state/locks"}},
    ).start("--backend", "b1")
    assert second.wait(30) == 1
    assert "already served by another volworker process" in second.log()
    assert "READY=1" not in second.notified
    assert first.stop() == 0


def test_sighup_does_not_stop_the_worker(make_worker: Callable[..., Worker]) -> None:
    worker = make_worker({"b1": {"volume_driver": "fake"}}).start().wait_ready()
    worker.signal(signal.SIGHUP)
    time.sleep(0.5)
    assert not worker.exited()
    assert worker.stop() == 0
    assert "Received SIGHUP" in worker.log()


def test_a_configuration_error_is_one_line_and_exit_2(tmp_path: pathlib.Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "volworker.cmd.worker",
            "--config-file",
            str(tmp_path / "nope"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    missing = tmp_path / "nope"
    assert done.stderr.strip().splitlines() == [
        f"volworker: configuration error: Failed to find some config files: {missing}"
    ]
