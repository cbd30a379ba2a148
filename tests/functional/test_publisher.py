"""``notification_publisher = kombu`` sends what oslo's Notifier sends:
oslo.messaging's own notification listener receives both alike."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import oslo_messaging
import pytest
from oslo_config import cfg

from tests.conftest import require_service
from tests.functional.conftest import new_volume
from volworker.context import RequestContext
from volworker.notify import Notifications
from volworker.publisher import BatchPublisher, kombu_url
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
        kombu_url(cfg.CONF, RABBIT_URL),
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
        for phase in ("end", "error"):
            ours.emit(context, "volume", "create", phase, {**payload, "n": phase})
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


def test_a_worker_with_the_kombu_publisher_announces_in_order(
    make_worker: Callable[..., Worker],
    client: Callable[[Worker], VolumeAPI],
    notifications: Callable[..., Listened],
) -> None:
    worker = make_worker(
        {"b1": {"volume_driver": "fake"}},
        defaults={"notification_publisher": "kombu"},
    )
    worker.start().wait_ready()
    api, events = client(worker), notifications(worker)
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
    assert worker.stop() == 0
    assert "Traceback" not in worker.log()
