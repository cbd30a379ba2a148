"""``notification_publisher = kombu`` (the default) sends what oslo's
Notifier sends: oslo.messaging's own notification listener receives both
alike; a worker announces in order with either, and the kombu publisher
survives its connection being closed under it."""

from __future__ import annotations

import functools
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import oslo_messaging
import pytest
from oslo_config import cfg

from tests.conftest import require_service, require_tool
from tests.functional.conftest import new_volume
from volworker import broker
from volworker.context import RequestContext
from volworker.notify import Notifications
from volworker.publisher import BatchPublisher
from volworker.rpc import _amqp
from volworker.rpc.rpcapi import VolumeAPI
from volworker.senders import Senders
from volworker.testing.listen import Notifications as Listened
from volworker.testing.worker import RABBIT_URL, Worker


class Heard:
    """An endpoint of oslo's notification listener that keeps everything."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._cond = threading.Condition()

    def _got(self, priority: str, *args: Any) -> None:
        ctxt, publisher_id, event_type, payload, metadata = args
        with self._cond:
            self.messages.append(
                {
                    "priority": priority,
                    "ctxt": ctxt,
                    "publisher_id": publisher_id,
                    "event_type": event_type,
                    "payload": payload,
                    "metadata": metadata,
                }
            )
            self._cond.notify_all()

    def info(self, *args: Any) -> None:
        self._got("info", *args)

    def error(self, *args: Any) -> None:
        self._got("error", *args)

    def wait(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"heard {len(self.messages)} of {count}"
                self._cond.wait(left)
            return list(self.messages)


@pytest.fixture
def topic() -> str:
    return f"vwtest-notify-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def heard(topic: str) -> Iterator[tuple[Heard, oslo_messaging.Transport, bool]]:
    """oslo's listener, and whether the broker's control exchange is
    durable: the test follows it as the worker does (volworker.rpc.queues),
    since the tests share the broker's default virtual host."""
    require_service("rabbitmq", 5672)
    transport = oslo_messaging.get_notification_transport(cfg.CONF, url=RABBIT_URL)
    durable = _amqp.declare_exchange_durable(transport)
    cfg.CONF.set_override("amqp_durable_queues", durable, group=_amqp.RABBIT_GROUP)
    endpoint = Heard()
    listener = oslo_messaging.get_notification_listener(
        transport,
        [oslo_messaging.Target(topic=topic)],
        [endpoint],
        executor="threading",
    )
    listener.start()
    try:
        yield endpoint, transport, durable
    finally:
        listener.stop()
        listener.wait()
        transport.cleanup()
        cfg.CONF.clear_override("amqp_durable_queues", group=_amqp.RABBIT_GROUP)


def test_oslos_listener_hears_the_kombu_publisher_as_oslos_notifier(
    heard: tuple[Heard, oslo_messaging.Transport, bool], topic: str
) -> None:
    endpoint, transport, durable = heard
    senders = Senders(1)
    senders.start()
    publisher = BatchPublisher(
        functools.partial(broker.connection, cfg.CONF, RABBIT_URL, "test"),
        cfg.CONF.control_exchange,
        durable=lambda: durable,
    )
    publisher.start()
    try:
        oslo = Notifications(transport, "volworker.h@b", senders, None, topic)
        ours = Notifications(transport, "volworker.h@b", senders, publisher, topic)
        context = RequestContext()
        payload = {"id": str(uuid.uuid4()), "size": 1, "metadata": {"k": "ü"}}
        oslo.emit(context, "volume", "create", "start", payload)
        endpoint.wait(1)
        ours.emit(context, "volume", "create", "start", payload)
        # the .end is larger than a frame: the broker gets it in pieces
        big = {**payload, "n": "end", "metadata": {"k": "ü" * 200_000}}
        ours.emit(context, "volume", "create", "end", big)
        ours.emit(context, "volume", "create", "error", {**payload, "n": "error"})
        messages = endpoint.wait(4)
    finally:
        publisher.stop(timeout=10)
        senders.stop(timeout=10)
    theirs, mine = messages[0], messages[1]
    assert (
        set(theirs["metadata"]) == set(mine["metadata"]) == {"message_id", "timestamp"}
    )
    for field in ("priority", "ctxt", "publisher_id", "event_type", "payload"):
        assert mine[field] == theirs[field], field
    assert mine["ctxt"]["request_id"] == context.request_id
    assert [(m["priority"], m["event_type"]) for m in messages[1:]] == [
        ("info", "volume.create.start"),
        ("info", "volume.create.end"),
        ("error", "volume.create.error"),
    ]
    assert messages[2]["payload"] == big
    assert messages[3]["payload"]["n"] == "error"


def _announces_in_order(worker: Worker, api: VolumeAPI, events: Listened) -> None:
    """20 creates and a refused one: each volume's events in order."""
    volumes = [new_volume(worker, "b1") for _ in range(20)]
    for volume in volumes:
        api.create_volume(volume)
    bad = {**new_volume(worker, "b1"), "size": 0}
    api.create_volume(bad)
    for volume in volumes:
        end = events.wait_event("volume.create.end", volume["id"])
        assert end["payload"]["status"] == "available"
    error = events.wait_event("volume.create.error", bad["id"])
    assert error["priority"] == "ERROR"
    for volume in volumes:
        kinds = [
            m["event_type"]
            for m in events.events()
            if m["payload"].get("id") == volume["id"]
        ]
        assert kinds == ["volume.create.start", "volume.create.end"]


@pytest.mark.parametrize("publisher", ["kombu", "oslo"])
def test_a_worker_announces_in_order_with_either_publisher(
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[..., Listened],
    publisher: str,
) -> None:
    worker = make_worker(
        {"b1": {"volume_driver": "fake"}},
        defaults={"notification_publisher": publisher},
    )
    worker.start().wait_ready()
    _announces_in_order(worker, client(worker), notifications(worker))
    assert worker.stop() == 0
    assert "Traceback" not in worker.log()


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def notify_user() -> Iterator[str]:
    """A RabbitMQ user of its own for the worker's notifications
    (``[oslo_messaging_notifications] transport_url``), so that the test
    can close every connection of that user and no other."""
    require_tool("rabbitmqctl", "rabbitmq-server")
    user = f"vw-notify-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_user", user, user)
    try:
        _rabbitmqctl("set_permissions", "-p", "/", user, ".*", ".*", ".*")
        yield user
    finally:
        _rabbitmqctl("delete_user", user)


def _close_connections(user: str) -> int:
    """Close, from the broker's side, every connection of ``user``."""
    listed = json.loads(_rabbitmqctl("list_connections", "--formatter", "json", "user"))
    _rabbitmqctl("close_all_user_connections", user, "test: closed under it")
    return sum(1 for conn in listed if conn["user"] == user)


def test_the_default_publisher_survives_its_connection_closed_under_it(
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[..., Listened],
    notify_user: str,
) -> None:
    worker = make_worker(
        {"b1": {"volume_driver": "fake"}},
        extra={
            "oslo_messaging_notifications": {
                "transport_url": RABBIT_URL.replace(
                    "guest:guest", f"{notify_user}:{notify_user}"
                )
            }
        },
    )
    worker.start().wait_ready()
    api, events = client(worker), notifications(worker)
    _announces_in_order(worker, api, events)
    # closed while idle: the publisher notices at its next heartbeat or send
    assert _close_connections(notify_user) == 1
    _announces_in_order(worker, api, events)
    # closed again, this time with notifications on their way
    volumes = [new_volume(worker, "b1") for _ in range(50)]
    for volume in volumes[:25]:
        api.create_volume(volume)
    assert _close_connections(notify_user) == 1
    for volume in volumes[25:]:
        api.create_volume(volume)
    for volume in volumes:
        events.wait_event("volume.create.end", volume["id"])
    # at least once: what was sent again has the message_id of the first copy
    for volume in volumes:
        unique = {
            m["message_id"]: m["event_type"]
            for m in events.events()
            if m["payload"].get("id") == volume["id"]
        }
        assert list(unique.values()) == ["volume.create.start", "volume.create.end"]
    assert worker.stop() == 0
    log = worker.log()
    assert "Traceback" not in log
    assert "notify-publisher: the connection was lost" in log or (
        "notify-publisher: publishing" in log
    )
