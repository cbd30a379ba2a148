"""Log lines written by a thread of their own, not by the event loop.

oslo.log's formatter and the write to the log file or journal cost the
event loop about a fifth of its time per operation under load, and a slow
disk or a full pipe would stall it outright; asyncio's documentation
recommends a queue for that reason. :func:`start` puts a queue in front of
the handlers oslo.log set up on the root logger: a thread that logs only
hands the record over (its message already made, so a mutable argument
cannot change it afterwards), and one thread formats and writes the records
in the order they came.

A warning or an error is written before the thread that logged it goes on,
with every line queued before it: what went wrong is on disk whatever
happens next. :func:`flush` does the same on demand (the service calls it
before it tells systemd it is ready, so the log holds everything start
did), and :func:`stop` writes what is left.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import threading
from typing import Any

__all__ = ["FLUSH_TIMEOUT", "flush", "start", "stop"]

#: the longest a flush waits for the log thread (a stuck disk, say)
FLUSH_TIMEOUT = 10.0


class _Listener(logging.handlers.QueueListener):
    """The log thread: writes each record; sets each flush's event when
    every record queued before it is written."""

    ident: int | None = None

    def __init__(self, records: queue.SimpleQueue[Any], *handlers: Any) -> None:
        super().__init__(records, *handlers, respect_handler_level=True)
        self.records = records

    def handle(self, record: Any) -> None:
        self.ident = threading.get_ident()
        if isinstance(record, threading.Event):
            record.set()
        else:
            super().handle(record)


_listener: _Listener | None = None


class _HandOver(logging.handlers.QueueHandler):
    """Queues each record for the log thread, its message made here; the
    log thread's handlers format it."""

    def prepare(self, record: logging.LogRecord) -> Any:
        # As QueueHandler.prepare (of Python 3.11: in place; the root
        # logger's handlers are the last to see a record), less the
        # formatting: the handlers format on the log thread.
        record.msg, record.args = record.getMessage(), None
        return record

    def handle(self, record: logging.LogRecord) -> Any:
        # The flush waits outside this handler's lock: a line that the log
        # thread's own handlers log meanwhile must not wait for it.
        queued = super().handle(record)
        if queued and record.levelno >= logging.WARNING:
            flush()
        return queued


def start() -> None:
    """Move the root logger's handlers behind a queue and a log thread."""
    global _listener
    root = logging.getLogger()
    handlers = list(root.handlers)
    if _listener is not None or not handlers:
        return
    records: queue.SimpleQueue[Any] = queue.SimpleQueue()
    _listener = _Listener(records, *handlers)
    for handler in handlers:
        root.removeHandler(handler)
    root.addHandler(_HandOver(records))
    _listener.start()


def flush(timeout: float = FLUSH_TIMEOUT) -> bool:
    """Wait until every record queued so far is written; whether it was
    within ``timeout`` (at once when there is no log thread)."""
    listener = _listener
    if listener is None or listener.ident == threading.get_ident():
        return True  # the log thread itself must not wait for itself
    written = threading.Event()
    listener.records.put_nowait(written)
    return written.wait(timeout)


def stop() -> None:
    """Write every record queued so far and stop the log thread; the
    handlers go back on the root logger, unless it was set up anew
    meanwhile (a reload of ``log_config_append`` replaces its handlers)."""
    global _listener
    listener, _listener = _listener, None
    if listener is None:
        return
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _HandOver)]
    for handler in ours:
        root.removeHandler(handler)
    if ours:
        for original in listener.handlers:
            root.addHandler(original)
    listener.stop()
    # What another thread queued after the log thread's last record.
    while True:
        try:
            item = listener.records.get_nowait()
        except queue.Empty:
            return
        listener.handle(item)
