"""AMQP frames written and read in bulk, around py-amqp.

py-amqp writes each message with its own system call, and serialises the
method's arguments and the message's properties again for every message,
though a publisher sends the same few of each over and over. The two
confirming publishers (:mod:`volworker.confirming`) put a whole batch in
one buffer instead (:class:`PublishFrames`): the arguments are serialised
once per exchange and routing key, the properties once per set of them,
both by py-amqp's own serialiser; the frames around them are AMQP
0-9-1's (method, content header, then the body in pieces of at most
``frame_max - 8`` bytes). The kombu intake's acknowledgements go out the
same way, all that are due in one write (:func:`ack_frames`).

py-amqp reads a frame with three reads of the socket (its header, its
payload, its end), each with a wait and, with a timeout, two more calls to
set it. :func:`read_ready` takes what the socket holds in one read and
hands each whole frame to py-amqp's own frame handler; what is left of a
frame stays in py-amqp's read buffer (``PRIVATE_API``), where py-amqp's
reader finds it too. The kombu intake reads deliveries this way and the
publishers their confirms.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
from collections.abc import Hashable, Iterable
from typing import Any

import amqp
from amqp import serialization, spec

__all__ = ["PRIVATE_API", "READ_SIZE", "PublishFrames", "ack_frames", "read_ready"]

#: py-amqp's private names read_ready relies on (a unit test fails when a
#: py-amqp release drops one): its transport's buffer of bytes read ahead
PRIVATE_API = {"amqp.transport.TCPTransport instance": ("_read_buffer",)}

#: the most one read takes from the socket
READ_SIZE = 16384
_FRAME_END = 0xCE
_HEAD = struct.Struct(">BHI")  # type, channel, size

_METHOD = struct.Struct(">BHIHH")  # type, channel, size, class, method
_HEADER = struct.Struct(">BHIHHQ")  # type, channel, size, class, weight, body size
_END = b"\xce"
_FRAME_OVERHEAD = _HEAD.size + len(_END)
# type, channel, size, class, method, delivery tag, multiple; frame end
_ACK = struct.Struct(">BHIHHQBB")

#: how many exchange and routing key pairs keep their serialised arguments
#: (the reply queues of calls are many; the clearing is rare and cheap)
_KEPT = 4096


class PublishFrames:
    """Frames for one channel of one connection; :meth:`take` empties it."""

    def __init__(self, channel_id: int, frame_max: int) -> None:
        self._channel = channel_id
        self._chunk = frame_max - _FRAME_OVERHEAD
        self._buffer = bytearray()
        self._args: dict[tuple[str, str, bool], bytes] = {}
        self._properties: dict[Hashable, bytes] = {}
        #: messages in the buffer
        self.count = 0

    def publish(
        self,
        body: bytes,
        exchange: str,
        routing_key: str,
        properties: tuple[tuple[str, Any], ...],
        *,
        mandatory: bool = False,
    ) -> None:
        """Add one message: ``properties`` as ``(name, value)`` pairs of
        AMQP's basic properties (``content_type``, ``delivery_mode``...)."""
        key = (exchange, routing_key, mandatory)
        args = self._args.get(key)
        if args is None:
            if len(self._args) >= _KEPT:
                self._args.clear()
            args = serialization.dumps(
                "Bssbb", (0, exchange, routing_key, mandatory, False)
            )
            self._args[key] = args
        props = self._properties.get(properties)
        if props is None:
            props = amqp.Message(b"", **dict(properties))._serialize_properties()
            self._properties[properties] = props
        out = self._buffer
        channel = self._channel
        out += _METHOD.pack(1, channel, 4 + len(args), *spec.Basic.Publish)
        out += args
        out += _END
        out += _HEADER.pack(
            2, channel, 12 + len(props), spec.Basic.Publish[0], 0, len(body)
        )
        out += props
        out += _END
        for start in range(0, len(body), self._chunk):
            piece = body[start : start + self._chunk]
            out += _HEAD.pack(3, channel, len(piece))
            out += piece
            out += _END
        self.count += 1

    def take(self) -> bytes:
        """The frames added since the last take."""
        data, self._buffer, self.count = bytes(self._buffer), bytearray(), 0
        return data


def ack_frames(channel_id: int, tags: Iterable[int]) -> bytes:
    """A ``basic.ack`` frame for each delivery tag, each acknowledging its
    own message only."""
    return b"".join(
        _ACK.pack(1, channel_id, 13, *spec.Basic.Ack, tag, 0, _FRAME_END)
        for tag in tags
    )


def read_ready(connection: Any, timeout: float = 0.0) -> int:
    """Wait at most ``timeout`` seconds for the broker, then hand the
    py-amqp ``connection`` every whole frame that has arrived; the number
    of frames handled.

    Raises ConnectionError when the broker closed the connection, and
    what py-amqp's frame handler raises (a channel or connection closed
    by the broker, an unexpected frame).
    """
    transport = connection.transport
    sock = transport.sock
    if sock is None:
        raise ConnectionError("the connection's socket is closed")
    if isinstance(sock, ssl.SSLSocket):
        # TLS holds bytes of its own that a poll does not see: py-amqp reads
        try:
            connection.drain_events(timeout=timeout)
        except TimeoutError:
            return 0
        return 1
    if timeout > 0:
        poll = select.poll()  # not select(): descriptors may pass 1,024
        poll.register(sock, select.POLLIN)
        if not poll.poll(timeout * 1000):
            return 0
    try:
        data = sock.recv(READ_SIZE, socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        data = b""
    else:
        if not data:
            raise ConnectionError("the broker closed the connection")
    transport._read_buffer += data
    return _handle_read(connection)


def _handle_read(connection: Any) -> int:
    """Hand the connection the whole frames in py-amqp's read buffer."""
    transport = connection.transport
    handle = connection.on_inbound_frame
    frames = 0
    while len(buffer := transport._read_buffer) >= 8:
        kind, channel, size = _HEAD.unpack_from(buffer)
        end = 7 + size
        if end >= len(buffer):
            break
        if buffer[end] != _FRAME_END:
            raise amqp.exceptions.UnexpectedFrame(
                f"Received frame_end {buffer[end]:#04x} while expecting 0xce"
            )
        # taken off the buffer before it is handled: a handler that reads
        # (a method that waits for its answer) reads on from the next one
        transport._read_buffer = buffer[end + 1 :]
        handle((kind, channel, buffer[7:end]))
        frames += 1
    return frames
