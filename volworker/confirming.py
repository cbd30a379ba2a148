"""Publishing from one thread on one confirm channel, confirms waited for
once per batch.

kombu is not thread-safe, and waiting for the broker's confirm of each
message is most of what a publish costs. A :class:`ConfirmingPublisher`
takes whatever is queued (from any thread), publishes it on its one
channel, waits once for the broker to confirm all of it, then takes the
next batch; an item counts as sent only once confirmed. When the
connection fails, the thread connects again and publishes the unconfirmed
batch again: at least once. While idle, it sends the connection's
heartbeats and so notices a broker that went away.

A batch goes out in one write: its frames are built in one buffer
(:mod:`volworker.frames`). Subclasses say what message an item is
(:meth:`_frame`), what to declare on a new channel (:meth:`_opened`) and
what the broker returned.
The notification publisher (``publisher.py``) and the kombu intake's
answers (``rpc/replies.py``) are the two.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import kombu

from volworker import batches
from volworker.frames import PublishFrames, read_ready

__all__ = ["CONFIRM_TIMEOUT", "ConfirmingPublisher"]

LOG = logging.getLogger(__name__)

_STOP = object()
#: how long to wait for a batch's confirms before the connection counts as lost
CONFIRM_TIMEOUT = 30.0


class ConfirmingPublisher:
    """One thread, one connection and one confirm channel; see the module."""

    #: what an item is, in log lines ("notifications", "call answers")
    items = "messages"

    def __init__(
        self,
        connect: Callable[[], kombu.Connection],
        *,
        name: str,
        batch_max: int = 256,
        heartbeat_rate: int = 2,
    ) -> None:
        self._connect = connect
        self._name = name
        self._batch_max = batch_max
        self._heartbeat_rate = heartbeat_rate
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._conn: kombu.Connection | None = None
        self._channel: Any = None
        self._frames: PublishFrames | None = None
        self._sent = 0
        self._unconfirmed: set[int] = set()
        self._refused = False
        #: items published and confirmed since start
        self.confirmed = 0
        #: connections lost and made again
        self.reconnects = 0

    def start(self) -> None:
        self._thread.start()

    def _put(self, item: Any) -> None:
        """Queue ``item`` for the thread (thread-safe)."""
        self._queue.put(item)

    def stop(self, timeout: float | None = None) -> None:
        """Publish what is queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    # the thread

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = batches.take(
                self._queue, self._batch_max, _STOP, timeout=self._wait()
            )
            batch = self._prepare(batch)
            if batch:
                self._send(batch, stopping)
            elif not stopping:
                self._look_after()
        self._stopping()
        self._close()

    def _wait(self) -> float | None:
        """How long to wait for items before looking after the connection:
        twice per heartbeat it sends, as oslo's driver does."""
        if self._conn is None:
            return None
        heartbeat = self._conn.connection.heartbeat
        return heartbeat / self._heartbeat_rate / 2 if heartbeat else None

    def _look_after(self) -> None:
        """While idle: send a heartbeat, read the broker's, and notice a
        broker that went away (the next batch then connects again)."""
        if self._conn is None:
            return
        try:
            self._conn.heartbeat_check(rate=self._heartbeat_rate)
            self._conn.drain_events(timeout=0)
        except TimeoutError:
            pass
        except Exception as exc:
            LOG.warning("%s: the connection was lost (%s)", self._name, exc)
            self._close()
            self.reconnects += 1

    def _send(self, batch: list[Any], stopping: bool) -> None:
        delay = 0.5
        while True:
            try:
                self._publish(batch)
            except Exception as exc:
                LOG.warning(
                    "%s: publishing %d %s failed (%s); retrying in %.1fs",
                    self._name,
                    len(batch),
                    self.items,
                    exc,
                    delay,
                )
                self._close()
                self.reconnects += 1
                if stopping:
                    LOG.error("Stopping: %d %s not sent", len(batch), self.items)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
            else:
                self.confirmed += len(batch)
                self._published(batch)
                return

    def _publish(self, batch: list[Any]) -> None:
        self._open()
        assert self._conn is not None and self._frames is not None
        frames = self._frames
        for item in batch:
            self._frame(frames, item)
        if frames.count != len(batch):
            made = frames.count
            frames.take()
            raise RuntimeError(f"{len(batch)} {self.items} made {made} messages")
        first = self._sent + 1
        self._sent += len(batch)
        amqp_conn = self._conn.connection
        amqp_conn.transport.write(frames.take())
        # what py-amqp counts to know the connection is in use (heartbeats)
        amqp_conn.bytes_sent += 1
        self._unconfirmed.update(range(first, self._sent + 1))
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        while self._unconfirmed:
            if self._refused:
                raise RuntimeError(f"the broker refused one of {self.items}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no confirm from the broker")
            read_ready(amqp_conn, left)

    def _open(self) -> Any:
        if self._channel is not None:
            return self._channel
        conn = self._connect()
        conn.connect()
        self._conn = conn
        channel = conn.channel()
        self._opened(conn, channel)
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self._channel = channel
        self._frames = PublishFrames(channel.channel_id, conn.connection.frame_max)
        self._sent = 0
        self._unconfirmed.clear()
        self._refused = False
        return channel

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed = {t for t in self._unconfirmed if t > tag}
        else:
            self._unconfirmed.discard(tag)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._refused = True

    def _close(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.release()
            except Exception as exc:
                LOG.debug("%s: closing the connection: %s", self._name, exc)

    # what subclasses say

    def _prepare(self, batch: list[Any]) -> list[Any]:
        """What of a batch taken off the queue to publish (on the thread)."""
        return batch

    def _opened(self, conn: kombu.Connection, channel: Any) -> None:
        """A new channel, before confirms are selected: declare on it."""

    def _frame(self, frames: PublishFrames, item: Any) -> None:
        """Add ``item`` to ``frames`` as one message."""
        raise NotImplementedError

    def _published(self, batch: list[Any]) -> None:
        """After a batch was confirmed."""

    def _stopping(self) -> None:
        """The last batch is out; the connection closes next."""
