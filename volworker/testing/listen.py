"""Listen like a consumer of the worker's output: notifications as an
auditor would bind to them, capability reports as a scheduler would, each
test with a private queue."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import kombu

#: The RabbitMQ virtual host tests and benchmarks use ("" is the default,
#: "/"); bench/run gives each run a fresh one and deletes it afterwards.
VHOST = os.environ.get("VOLWORKER_TEST_VHOST", "")
BROKER = "amqp://guest:guest@127.0.0.1:5672/" + (VHOST or "/")


def _unwrap(body: Any) -> dict[str, Any]:
    if isinstance(body, (bytes, str)):
        body = json.loads(body)
    if "oslo.message" in body:
        body = json.loads(body["oslo.message"])
    return dict(body)


class Collector:
    """Collects the messages routed to a private, auto-deleted queue."""

    def __init__(
        self, exchange: kombu.Exchange, routing_key: str, broker: str = BROKER
    ) -> None:
        self.messages: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._conn = kombu.Connection(broker)
        self._queue = kombu.Queue(
            f"vwtest-listen-{uuid.uuid4().hex[:10]}",
            exchange=exchange,
            routing_key=routing_key,
            exclusive=True,
            auto_delete=True,
        )
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("listener did not bind")

    def _on_message(self, body: Any, message: kombu.Message) -> None:
        with self._cond:
            self.messages.append(_unwrap(body))
            self._cond.notify_all()
        message.ack()

    def _run(self) -> None:
        with self._conn.Consumer(self._queue, callbacks=[self._on_message]):
            self._ready.set()
            while not self._stop.is_set():
                try:
                    self._conn.drain_events(timeout=0.2)
                except TimeoutError:
                    continue

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 30
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out; {len(self.messages)} message(s) seen: "
                        f"{[m.get('event_type') for m in self.messages][-20:]}"
                    )
                self._cond.wait(left)
            return list(self.messages)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._conn.release()


class Notifications(Collector):
    """Every notification of one publisher (``volworker.<host>@<backend>``).

    ``durable`` must match the broker's ``openstack`` exchange, as the
    workers declared it (volworker.rpc.queues).
    """

    def __init__(
        self, *publisher_prefixes: str, broker: str = BROKER, durable: bool = False
    ) -> None:
        self.prefixes = publisher_prefixes
        exchange = kombu.Exchange("openstack", type="topic", durable=durable)
        super().__init__(exchange, "notifications.*", broker)

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [
                m
                for m in self.messages
                if m.get("publisher_id", "").startswith(self.prefixes)
                and (event_type is None or m["event_type"] == event_type)
            ]

    def wait_event(
        self, event_type: str, object_id: str, timeout: float = 30
    ) -> dict[str, Any]:
        """The first ``event_type`` notification about ``object_id``."""

        def found(_: list[dict[str, Any]]) -> bool:
            return any(
                m["payload"].get("id") == object_id for m in self.events(event_type)
            )

        self.wait_for(found, timeout)
        return next(
            m for m in self.events(event_type) if m["payload"].get("id") == object_id
        )

    def count(self, suffix: str) -> int:
        return sum(1 for m in self.events() if m["event_type"].endswith(suffix))


class Reports(Collector):
    """update_service_capabilities casts on a scheduler topic's fanout."""

    def __init__(self, topic: str) -> None:
        exchange = kombu.Exchange(
            f"{topic}_fanout", type="fanout", durable=False, auto_delete=True
        )
        super().__init__(exchange, topic)

    def all(self) -> list[dict[str, Any]]:
        with self._cond:
            return [
                dict(m["args"], received=m["received"])
                for m in self.messages
                if m.get("method") == "update_service_capabilities"
            ]

    def _on_message(self, body: Any, message: kombu.Message) -> None:
        received = dict(_unwrap(body), received=time.monotonic())
        with self._cond:
            self.messages.append(received)
            self._cond.notify_all()
        message.ack()

    def wait_report(
        self,
        predicate: Callable[[dict[str, Any]], bool] = lambda report: True,
        timeout: float = 30,
    ) -> dict[str, Any]:
        """The first report that matches."""
        self.wait_for(lambda _: any(predicate(r) for r in self.all()), timeout)
        return next(r for r in self.all() if predicate(r))
