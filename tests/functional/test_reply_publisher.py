"""The kombu intake's answers to calls: one for a reply queue that does not
exist comes back from the broker, is tried again for missing_queue_timeout
and then abandoned with an error; the answers beside it go out once, and
the publisher keeps its connection."""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Iterator

import kombu
import oslo_messaging
import pytest
from oslo_config import cfg

from tests.conftest import require_service
from volworker import broker
from volworker.rpc.replies import ReplyPublisher
from volworker.testing.worker import RABBIT_URL


@pytest.fixture
def reply_queue() -> Iterator[tuple[str, kombu.Connection]]:
    require_service("rabbitmq", 5672)
    # registers [oslo_messaging_rabbit], which broker.connection reads
    oslo_messaging.get_rpc_transport(cfg.CONF, url=RABBIT_URL).cleanup()
    queue = f"vwtest-reply-{uuid.uuid4().hex[:8]}"
    conn = kombu.Connection(RABBIT_URL.replace("rabbit://", "amqp://", 1))
    conn.channel().queue_declare(queue, auto_delete=False)
    try:
        yield queue, conn
    finally:
        conn.channel().queue_delete(queue)
        conn.release()


def _answers(conn: kombu.Connection, queue: str) -> list[str]:
    channel, got = conn.channel(), []
    while (message := channel.basic_get(queue, no_ack=True)) is not None:
        got.append(message.body)
    return got


def test_an_answer_to_a_missing_reply_queue_is_abandoned_alone(
    reply_queue: tuple[str, kombu.Connection], caplog: pytest.LogCaptureFixture
) -> None:
    queue, conn = reply_queue
    caplog.set_level(logging.INFO, "volworker")
    publisher = ReplyPublisher(
        functools.partial(broker.connection, cfg.CONF, RABBIT_URL, "test"),
        missing_queue_timeout=0.5,
    )
    publisher.start()
    nowhere = f"vwtest-nowhere-{uuid.uuid4().hex[:8]}"
    try:
        publisher.send(nowhere, "m1", b'{"to": "nowhere"}')
        publisher.send(queue, "m2", b'{"to": "here", "n": 2}')
        deadline = time.monotonic() + 10
        while "Abandoning it" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        publisher.send(queue, "m3", b'{"to": "here", "n": 3}')
        publisher.send(nowhere, "m4", b'{"to": "nowhere"}')  # dropped at once
    finally:
        publisher.stop(timeout=10)  # after publishing what is queued
    assert "Abandoning it" in caplog.text
    assert f"Reply queue {nowhere} is gone: answer to m4 dropped" in caplog.text
    assert _answers(conn, queue) == ['{"to": "here", "n": 2}', '{"to": "here", "n": 3}']
    assert publisher.reconnects == 0
