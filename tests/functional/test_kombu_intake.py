"""``rpc_intake = kombu`` (the default): volworker's own listener on
py-amqp serves what oslo.messaging's RPC clients send, on the queues oslo's
server consumes, acknowledges a cast only once it is journaled, survives a
connection closed under it, and refuses what is no request with a log
line. oslo's listener (``rpc_intake = oslo``, and the fallback) keeps the
same promises in the tests run with either."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import kombu
import pytest

from tests.conftest import require_tool
from tests.faults.raw import RawPublisher, envelope, request
from tests.faults.rig import journal_of, unexpected_errors, wait_for
from tests.functional.conftest import new_volume
from tests.functional.test_errors import _raw_call
from tests.functional.test_lifecycle import wait_status
from volworker import exception
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import BROKER, Reports
from volworker.testing.worker import RABBIT_URL, Worker

KOMBU = {"rpc_intake": "kombu"}
FALLBACK = "rpc_intake = kombu does not implement"


def _connections(role: str, column: str = "pid") -> list[str]:
    """``column`` (by default the broker's id) of each connection of this
    ``role`` (``rpc-intake:<server>``, ``rpc-replies:<server>``)."""
    ctl = require_tool("rabbitmqctl", "rabbitmq-server")
    listed = subprocess.run(
        [ctl, "-q", "list_connections", column, "client_properties"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    # broker.connection names them <program>:<pid>:<role>
    named = re.compile(r'\{"connection_name","[^"]*:' + re.escape(role) + r'"\}')
    return [line.split("\t")[0] for line in listed.splitlines() if named.search(line)]


def _close(connections: list[str]) -> None:
    """Close connections from the broker's side, as an operator would."""
    ctl = require_tool("rabbitmqctl", "rabbitmq-server")
    for pid in connections:
        subprocess.run(
            [ctl, "-q", "close_connection", pid, "closed by a test"],
            capture_output=True,
            timeout=60,
            check=True,
        )


def _depth(queue: str) -> int:
    with kombu.Connection(BROKER) as conn:
        return int(conn.default_channel.queue_declare(queue, passive=True)[1])


def _intake_worker(
    make_worker: Callable[..., Worker], intake: dict[str, str]
) -> Callable[..., Worker]:
    def make(defaults: dict[str, Any] | None = None, **backend: Any) -> Worker:
        backends = {"b1": {"volume_driver": "fake", "fake_pools": "a,b", **backend}}
        return make_worker(backends, defaults={**intake, **(defaults or {})})

    return make


@pytest.fixture
def kombu_worker(make_worker: Callable[..., Worker]) -> Callable[..., Worker]:
    """A worker (not started) with the kombu intake and a fake backend b1."""
    return _intake_worker(make_worker, KOMBU)


@pytest.fixture(params=["kombu", "oslo"])
def either_worker(
    make_worker: Callable[..., Worker], request: pytest.FixtureRequest
) -> Callable[..., Worker]:
    """The same with either intake: oslo's listener stays the fallback, and
    both keep the same promises."""
    return _intake_worker(make_worker, {"rpc_intake": request.param})


def test_oslo_clients_casts_calls_and_fanout_reach_either_intake(
    either_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    scheduler: tuple[str, Reports],
) -> None:
    topic, reports = scheduler
    worker = either_worker({"scheduler_topic": topic}).start().wait_ready()
    api, server = client(worker), worker.server("b1")
    assert FALLBACK not in worker.log()
    kombu = "rpc_intake = kombu takes requests" in worker.log()
    assert kombu == ("rpc_intake = kombu" in worker.config.read_text())
    assert len(_connections(f"rpc-intake:{server}")) == int(kombu)

    # a cast to the server's own queue, then calls to it and to the topic's
    volume = new_volume(worker, "b1", size=2)
    api.create_volume(volume)
    record = wait_status(api, server, volume["id"], "available")
    assert (record["size"], record["host"]) == (2, f"{server}#a")
    shared = api.client.prepare(version="1.0")
    assert shared.call({}, "get_volume", volume_id=volume["id"])["id"] == volume["id"]
    listed = api.list_volumes(server)
    assert [v["id"] for v in listed] == [volume["id"]]

    # contract errors come back to oslo's client by class
    with pytest.raises(exception.VolumeNotFound):
        api.get_volume(server, str(uuid.uuid4()))
    with pytest.raises(exception.InvalidInput, match="volume_id"):
        api.get_volume(server, "../../etc/passwd")
    with pytest.raises(exception.NotSupported, match="frobnicate"):
        _raw_call(api, server, "frobnicate")
    with pytest.raises(exception.NotSupported, match=r"2\.0"):
        _raw_call(api, server, "get_volume", version="2.0", volume_id="x")

    # the fanout: a capabilities report on request
    first = reports.wait_report()
    api.publish_service_capabilities()
    answer = reports.wait_report(lambda r: r["received"] > first["received"])
    assert answer["host"] == server
    assert unexpected_errors(worker) == []
    assert worker.stop() == 0


def test_a_cast_is_acknowledged_only_once_journaled(
    either_worker: Callable[..., Worker], client: Callable[[Worker], VolumeAPI]
) -> None:
    """kill -9 with casts queued: each is in the journal or back on its
    queue, and after the restart each is done, once."""
    worker = either_worker(
        {"max_concurrent_operations": 2, "intake_limit": 4},
        fake_method_latency="create_volume:0.2",
    )
    worker.start().wait_ready()
    api, server = client(worker), worker.server("b1")
    volumes = [new_volume(worker, "b1") for _ in range(40)]
    for volume in volumes:
        api.create_volume(volume)
    journal = journal_of(worker)
    wait_for(lambda: len(journal.operations()) >= 6, 30, "creates journaled")
    worker.kill()

    journaled = {row["resource_id"] for row in journal.operations()}
    queue = f"{worker.topic}.{server}"
    # The broker puts back what the dead connection had not acknowledged.
    wait_for(
        lambda: len(journaled) + _depth(queue) >= len(volumes),
        15,
        f"every cast journaled ({len(journaled)}) or back on {queue}",
    )
    assert len(journaled) < len(volumes), "the backlog should wait on the broker"

    worker.start().wait_ready()
    for volume in volumes:
        wait_status(api, server, volume["id"], "available", timeout=60)
    creates = [r for r in journal.operations() if r["action"] == "create_volume"]
    assert sorted(r["resource_id"] for r in creates) == sorted(v["id"] for v in volumes)
    assert unexpected_errors(worker) == []
    assert worker.stop() == 0


def test_a_connection_closed_under_it_is_survived(
    kombu_worker: Callable[..., Worker], client: Callable[[Worker], VolumeAPI]
) -> None:
    worker = kombu_worker(
        {"max_concurrent_operations": 2},
        fake_method_latency="create_volume:0.05",
    )
    worker.start().wait_ready()
    api, server = client(worker), worker.server("b1")
    api.list_volumes(server)  # answers have a connection of their own now
    # both of its connections: the one it consumes on and its answers'
    connections = _connections(f"rpc-intake:{server}")
    connections += _connections(f"rpc-replies:{server}")
    assert len(connections) == 2
    volumes = [new_volume(worker, "b1") for _ in range(110)]
    for volume in volumes[:100]:
        api.create_volume(volume)
    journal = journal_of(worker)
    wait_for(lambda: len(journal.operations()) >= 10, 30, "creates under way")
    _close(connections)
    wait_for(lambda: "connected to the broker again" in worker.log(), 30, "reconnect")
    for volume in volumes[100:]:
        api.create_volume(volume)
    for volume in volumes:
        wait_status(api, server, volume["id"], "available", timeout=60)
    creates = [r for r in journal.operations() if r["action"] == "create_volume"]
    assert len(creates) == len(volumes), "a create was journaled twice"
    assert "lost the connection to the broker" in worker.log()
    assert len(_connections(f"rpc-intake:{server}")) == 1
    assert unexpected_errors(worker) == []
    assert worker.stop() == 0


def test_what_is_no_request_is_refused_with_a_log_line(
    kombu_worker: Callable[..., Worker], client: Callable[[Worker], VolumeAPI]
) -> None:
    worker = kombu_worker().start().wait_ready()
    api, server = client(worker), worker.server("b1")
    raw = RawPublisher(worker.topic, server)
    hidden = new_volume(worker, "b1")
    try:
        raw.publish(b"\x00\x01", content_type="application/octet-stream")
        raw.publish(b"{not json", content_type="application/json")
        raw.publish([1, 2, 3])
        raw.publish({"oslo.version": "2.0", "oslo.message": "[1, 2]"})
        create = request("create_volume", {"volume": hidden})
        raw.publish({"oslo.version": "3.0", "oslo.message": json.dumps(create)})
        good = new_volume(worker, "b1")
        raw.publish(envelope(request("create_volume", {"volume": good})))
        wait_status(api, server, good["id"], "available")
    finally:
        raw.close()
    log = worker.log()
    refusals = [line for line in log.splitlines() if "refused a message on" in line]
    reasons = [
        "content type 'application/octet-stream'",
        "the body is not JSON",
        "the body is a JSON list",
        "oslo.message is a JSON list",
        "envelope version '3.0' is not 2.0",
    ]
    for reason, line in zip(reasons, refusals, strict=True):
        assert reason in line, (reason, line)
    with pytest.raises(exception.VolumeNotFound):
        api.get_volume(server, hidden["id"])
    assert unexpected_errors(worker) == []
    assert worker.stop() == 0
    assert _depth(f"{worker.topic}.{server}") == 0, "a refused message was kept"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_it_fails_over_to_the_next_host_and_keeps_an_idle_connection(
    kombu_worker: Callable[..., Worker], client: Callable[[Worker], VolumeAPI]
) -> None:
    """transport_url names a dead host first; heartbeats every 2 s keep the
    connection alive through an idle spell and through a stop."""
    dead = f"guest:guest@127.0.0.1:{_free_port()}"
    live = RABBIT_URL.removeprefix("rabbit://")
    worker = kombu_worker(
        {"transport_url": f"rabbit://{dead},{live}"},
    )
    worker.config.write_text(
        worker.config.read_text()
        + "\n[oslo_messaging_rabbit]\nheartbeat_timeout_threshold = 2\n"
    )
    worker.start().wait_ready()
    api, server = client(worker), worker.server("b1")
    volume = new_volume(worker, "b1")
    api.create_volume(volume)
    wait_status(api, server, volume["id"], "available")
    time.sleep(8)  # four heartbeat timeouts without a request
    assert api.get_volume(server, volume["id"])["status"] == "available"
    log = worker.log()
    assert "cannot reach the broker" in log  # the dead host, tried first
    assert _connections(f"rpc-intake:{server}", "timeout") == ["2"]
    assert "lost the connection" not in log, log
    assert unexpected_errors(worker) == []
    assert worker.stop() == 0
