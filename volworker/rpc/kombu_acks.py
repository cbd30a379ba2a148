"""Acknowledgements made on any thread, sent on the consumer's.

kombu is not thread-safe, so an acknowledgement (the manager's, once a cast
is journaled) is queued with the channel it belongs to, and the thread that
owns the connection sends it. That thread may be waiting for messages in
``poll()``: a socket pair lets an acknowledgement wake it, so that it
goes out at once and the broker's prefetch window reopens. One wake-up is
pending at a time, however many acknowledgements wait.

A delivery tag means something only on its channel: acknowledgements of a
channel that was lost since are dropped (with a count in the log), as the
broker delivers those messages again. Those due on the current channel go
out in one write (:func:`volworker.frames.ack_frames`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import threading
from typing import Any

from volworker import frames

__all__ = ["Acks"]

LOG = logging.getLogger(__name__)


class Acks:
    """The acknowledgements due, and the socket that says there are some."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._due: collections.deque[tuple[Any, int]] = collections.deque()
        self.waker, self._waker_w = socket.socketpair()
        self.waker.setblocking(False)
        self._waker_w.setblocking(False)
        self._woken = False
        #: the thread that sends them, which need not wake itself
        self.owner: int | None = None

    def add(self, channel: Any, tag: int) -> None:
        """Queue the acknowledgement of ``tag`` on ``channel`` (thread-safe)."""
        self._due.append((channel, tag))
        if threading.get_ident() != self.owner:
            self.wake()

    def wake(self) -> None:
        if not self._woken:
            self._woken = True
            with contextlib.suppress(OSError):  # full: a wake-up is pending
                self._waker_w.send(b"\0")

    def woke(self) -> None:
        """After ``waker`` was readable, before send(): ready for the next
        wake-up."""
        # Empty the socket first, then clear the flag: the other way round,
        # an add() in between would write a byte this drains, and leave the
        # flag set with nothing to read, so that no add() ever wakes the
        # consumer again. This way an add() before the flag is cleared is
        # sent by the send() that follows, and one after writes a byte.
        with contextlib.suppress(BlockingIOError):
            while self.waker.recv(4096):
                pass
        self._woken = False

    def send(self, channel: Any) -> None:
        """Send those of ``channel`` (the current one, None when lost);
        drop the others."""
        stale = 0
        tags = []
        while self._due:
            owner, tag = self._due.popleft()
            if owner is channel and channel is not None:
                tags.append(tag)
            else:
                stale += 1
        if tags:
            # one write for all of them, where py-amqp makes one per ack
            connection = channel.connection
            connection.transport.write(frames.ack_frames(channel.channel_id, tags))
            connection.bytes_sent += 1
        if stale:
            LOG.warning(
                "%s: dropped %d acknowledgement(s) of messages from a lost "
                "connection; the broker delivers them again, and the journal "
                "drops those it holds",
                self._name,
                stale,
            )

    def close(self) -> None:
        self.waker.close()
        self._waker_w.close()
