"""bench's EventCounter counts what a publisher sent, read in bulk and
unacknowledged: every notification once, of its own publisher only, with
the publisher's first and last stamps, also when a body spans reads."""

from __future__ import annotations

import datetime
import json
import uuid

import kombu

from bench.counting import EventCounter
from volworker.testing.listen import BROKER


def _publish(producer: kombu.Producer, publisher: str, event: str, n: int) -> None:
    stamp = str(datetime.datetime(2026, 1, 1, 0, 0, n % 60))
    message = {
        "message_id": str(uuid.uuid4()),
        "publisher_id": publisher,
        "event_type": event,
        "priority": "INFO",
        # some bodies larger than a frame, and than one read of the socket
        "payload": {"id": str(uuid.uuid4()), "pad": "x" * (n % 7 * 9_000)},
        "timestamp": stamp,
    }
    body = {"oslo.version": "2.0", "oslo.message": json.dumps(message)}
    producer.publish(body, routing_key="notifications.info")


def test_every_notification_of_its_publisher_is_counted_once() -> None:
    prefix = f"bench.{uuid.uuid4().hex[:8]}"
    counter = EventCounter(prefix)
    exchange = kombu.Exchange("openstack", type="topic", durable=False)
    try:
        with kombu.Connection(BROKER) as conn:
            producer = conn.Producer(exchange=exchange)
            for n in range(300):
                _publish(producer, f"{prefix}@a", "volume.create.start", n)
                _publish(producer, f"other.{prefix}", "volume.create.start", n)
            for n in range(1, 60):
                _publish(producer, f"{prefix}@a", "volume.create.end", n)
        counter.wait_count("volume.create.end", 59, 30)
        counter.wait_count("volume.create.start", 300, 30)
        assert counter.counts == {"volume.create.start": 300, "volume.create.end": 59}
        # stamps 00:00:00 to 00:00:59; the end's last is 59 s after the first start
        assert counter.span("volume.create.start", "volume.create.end") == 59
    finally:
        counter.close()
