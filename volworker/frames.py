"""A batch of ``basic.publish`` frames, written to the socket at once.

py-amqp writes each message with its own system call, and serialises the
method's arguments and the message's properties again for every message,
though a publisher sends the same few of each over and over. The two
confirming publishers (:mod:`volworker.confirming`) put a whole batch in
one buffer instead: the arguments are serialised once per exchange and
routing key, the properties once per set of them, both by py-amqp's own
serialiser; the frames around them are AMQP 0-9-1's (method, content
header, then the body in pieces of at most ``frame_max - 8`` bytes).
"""

from __future__ import annotations

import struct
from collections.abc import Hashable
from typing import Any

import amqp
from amqp import serialization, spec

__all__ = ["PublishFrames"]

_METHOD = struct.Struct(">BHIHH")  # type, channel, size, class, method
_HEADER = struct.Struct(">BHIHHQ")  # type, channel, size, class, weight, body size
_BODY = struct.Struct(">BHI")  # type, channel, size
_END = b"\xce"
_FRAME_OVERHEAD = _BODY.size + len(_END)

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
            out += _BODY.pack(3, channel, len(piece))
            out += piece
            out += _END
        self.count += 1

    def take(self) -> bytes:
        """The frames added since the last take."""
        data, self._buffer, self.count = bytes(self._buffer), bytearray(), 0
        return data
