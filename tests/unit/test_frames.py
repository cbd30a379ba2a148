"""The publishers' batch of frames is, byte for byte, what py-amqp itself
writes for the same messages, and py-amqp's reader takes it apart again;
read_ready reads what the broker sends as py-amqp does."""

from __future__ import annotations

import struct
import time
import uuid
from typing import Any

import amqp
import kombu
import pytest
from amqp import spec
from amqp.method_framing import frame_handler, frame_writer

from tests.conftest import require_service
from volworker import frames
from volworker.testing.worker import RABBIT_URL

FRAME_MAX = 4096
JSON = (("content_type", "application/json"), ("content_encoding", "utf-8"))
#: without a content_encoding, py-amqp hands over the body as bytes
BINARY = (("content_type", "application/octet-stream"),)


class _Connection:
    """What py-amqp's frame writer and reader use of a connection."""

    frame_max = FRAME_MAX
    bytes_sent = 0
    bytes_recv = 0

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.received: list[tuple[Any, ...]] = []

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))


def _py_amqp(messages: list[tuple[bytes, str, str, dict[str, Any], bool]]) -> bytes:
    conn = _Connection()
    write = frame_writer(conn, conn)
    for body, exchange, key, properties, mandatory in messages:
        args = amqp.serialization.dumps("Bssbb", (0, exchange, key, mandatory, False))
        write(1, 3, spec.Basic.Publish, args, amqp.Message(body, **properties))
    return b"".join(conn.written)


def _split(data: bytes) -> list[tuple[int, int, bytes]]:
    found = []
    while data:
        kind, channel, size = struct.unpack(">BHI", data[:7])
        assert data[7 + size] == 0xCE
        found.append((kind, channel, data[7 : 7 + size]))
        data = data[8 + size :]
    return found


@pytest.mark.parametrize(
    "sizes",
    [[0], [1], [FRAME_MAX - 8], [FRAME_MAX - 7], [3 * FRAME_MAX + 5], [10, 0, 9000]],
)
def test_the_frames_are_py_amqps_own(sizes: list[int]) -> None:
    messages = [
        (
            bytes([i % 251 for i in range(size)]),
            "openstack" if n % 2 else "",
            f"notifications.info.{n}",
            {**dict(JSON), "delivery_mode": 1 + n % 2},
            bool(n % 2),
        )
        for n, size in enumerate(sizes)
    ]
    batch = frames.PublishFrames(3, FRAME_MAX)
    for body, exchange, key, properties, mandatory in messages:
        batch.publish(
            body, exchange, key, tuple(properties.items()), mandatory=mandatory
        )
    assert batch.count == len(messages)
    ours = batch.take()
    assert ours == _py_amqp(messages)
    assert batch.count == 0 and batch.take() == b""
    # no frame is larger than the connection allows
    assert all(len(payload) + 8 <= FRAME_MAX for _, _, payload in _split(ours))

    # py-amqp reads content after basic.publish too when told it has some
    conn = _Connection()
    read = frame_handler(
        conn,
        lambda *args: conn.received.append(args),
        content_methods=frozenset({spec.Basic.Publish}),
    )
    for frame in _split(ours):
        read(frame)
    assert [
        (
            channel,
            sig,
            amqp.serialization.loads("Bssbb", args, 4)[0][1:4],
            content.body or b"",  # py-amqp reads no body as ""
            content.properties,
        )
        for channel, sig, args, content in conn.received
    ] == [
        (3, spec.Basic.Publish, [exchange, key, mandatory], body, properties)
        for body, exchange, key, properties, mandatory in messages
    ]


def test_py_amqp_keeps_the_read_buffer_read_ready_fills() -> None:
    require_service("rabbitmq", 5672)
    conn = kombu.Connection(_amqp_url())
    try:
        conn.connect()
        transport = conn.connection.transport
        for name in frames.PRIVATE_API["amqp.transport.TCPTransport instance"]:
            assert isinstance(getattr(transport, name), bytes), name
    finally:
        conn.release()


def _amqp_url() -> str:
    return RABBIT_URL.replace("rabbit://", "amqp://", 1)


def test_a_batch_goes_through_the_broker_and_is_read_back_in_bulk() -> None:
    """Bodies from empty to several frames long, published in one write,
    confirmed and consumed through read_ready; a handler that itself waits
    for the broker's answer (a passive declare) reads on from the frames
    read_ready left."""
    require_service("rabbitmq", 5672)
    queue = f"vwtest-frames-{uuid.uuid4().hex[:8]}"
    sizes = [0, 1, 700, frames.READ_SIZE * 3, 300_000, *range(100, 4000, 100)]
    bodies = [bytes([n % 251]) * size for n, size in enumerate(sizes)]
    publisher, consumer = kombu.Connection(_amqp_url()), kombu.Connection(_amqp_url())
    try:
        channel = publisher.channel()
        channel.queue_declare(queue, auto_delete=False, durable=False)
        channel.confirm_select()
        acked: set[int] = set()
        channel.events["basic_ack"].add(
            lambda tag, multiple: acked.update(
                range(1, tag + 1) if multiple else (tag,)
            )
        )
        batch = frames.PublishFrames(channel.channel_id, publisher.connection.frame_max)
        for body in bodies:
            batch.publish(body, "", queue, BINARY)
        publisher.connection.transport.write(batch.take())
        deadline = time.monotonic() + 30
        while len(acked) < len(bodies) and time.monotonic() < deadline:
            frames.read_ready(publisher.connection, 1.0)
        assert acked == set(range(1, len(bodies) + 1))

        got: list[bytes] = []
        reading = consumer.channel()

        def on_message(message: amqp.Message) -> None:
            got.append(message.body or b"")  # no body reads as ""
            if len(got) == 3:
                assert reading.queue_declare(queue, passive=True).queue == queue

        reading.basic_consume(queue, callback=on_message, no_ack=True)
        deadline = time.monotonic() + 30
        while len(got) < len(bodies) and time.monotonic() < deadline:
            frames.read_ready(consumer.connection, 1.0)
        assert got == bodies
        reading.queue_delete(queue)
    finally:
        publisher.release()
        consumer.release()


def test_acknowledgements_are_py_amqps_own() -> None:
    tags = [1, 2, 255, 2**40 + 3]
    conn = _Connection()
    write = frame_writer(conn, conn)
    for tag in tags:
        args = amqp.serialization.dumps("Lb", (tag, False))
        write(1, 5, spec.Basic.Ack, args, None)
    assert frames.ack_frames(5, tags) == b"".join(conn.written)
    assert frames.ack_frames(5, []) == b""
