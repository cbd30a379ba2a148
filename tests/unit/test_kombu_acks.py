"""An acknowledgement made on another thread wakes the consumer's thread at
once, however the two threads interleave, and one of a lost channel is
dropped."""

from __future__ import annotations

import select
import struct
import sys
import threading
import time
from typing import Any

import pytest
from amqp import spec
from amqp.method_framing import frame_handler
from amqp.serialization import loads

from volworker.rpc.kombu_acks import Acks


class Channel:
    """Records what it was asked to acknowledge, and when: the frames
    written to its connection, read back by py-amqp's frame reader."""

    channel_id = 7

    def __init__(self) -> None:
        self.acked: dict[int, float] = {}
        self.connection = self
        self.transport = self
        self.bytes_sent = self.bytes_recv = 0
        self._read = frame_handler(self, self._method)

    def write(self, data: bytes) -> None:
        while data:
            kind, channel, size = struct.unpack_from(">BHI", data)
            assert data[7 + size] == 0xCE
            self._read((kind, channel, data[7 : 7 + size]))
            data = data[8 + size :]

    def _method(self, channel: int, sig: tuple[int, int], args: bytes, _: Any) -> None:
        assert (channel, sig) == (self.channel_id, spec.Basic.Ack)
        (tag, multiple), _ = loads("Lb", args, 4)
        assert not multiple
        self.acked[tag] = time.monotonic()


def _consumer(acks: Acks, channel: Channel, done: threading.Event) -> None:
    """The consumer thread's turns: wait for a wake-up (at most a second,
    as a poll waits), send what is due."""
    acks.owner = threading.get_ident()
    poll = select.poll()
    poll.register(acks.waker, select.POLLIN)
    while not done.is_set():
        if poll.poll(1000):
            acks.woke()
        acks.send(channel)


def test_every_acknowledgement_wakes_the_consumer() -> None:
    acks, channel, done = Acks("test"), Channel(), threading.Event()
    consumer = threading.Thread(target=_consumer, args=(acks, channel, done))
    # Threads switch as often as they can, so that every interleaving of
    # add() and the consumer's turn comes up.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    consumer.start()
    added: dict[int, float] = {}
    try:
        for tag in range(1, 10_001):
            added[tag] = time.monotonic()
            acks.add(channel, tag)
            if tag % 3 == 0:
                time.sleep(0)  # let the consumer run between two
        deadline = time.monotonic() + 5
        while len(channel.acked) < len(added) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sys.setswitchinterval(switch)
        done.set()
        acks.wake()
        consumer.join(5)
        acks.close()
    late = [t for t in added if channel.acked.get(t, 99e9) - added[t] > 0.5]
    assert not late, f"{len(late)} acknowledgement(s) waited for a poll to time out"


def test_those_of_a_lost_channel_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    acks, old, new = Acks("h@b"), Channel(), Channel()
    acks.owner = threading.get_ident()
    acks.add(old, 1)
    acks.add(new, 1)
    acks.add(old, 2)
    acks.send(new)
    acks.close()
    assert (list(old.acked), list(new.acked)) == ([], [1])
    assert "dropped 2 acknowledgement(s)" in caplog.text
