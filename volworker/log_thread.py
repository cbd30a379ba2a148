"""Log lines written by a thread of their own, not by the event loop.

oslo.log's formatter and the write to the log file or journal cost the
event loop about a fifth of its time per operation under load, and a slow
disk or a full pipe would stall it outright; asyncio's documentation
recommends a queue for that reason. :func:`start` puts a queue in front of
the handlers oslo.log set up on the root logger: a thread that logs only
hands the record over (its message already made, so a mutable argument
cannot change it afterwards), and one thread formats and writes the records
in the order they came. :func:`stop` writes what is left.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
from typing import Any

__all__ = ["start", "stop"]

_listener: logging.handlers.QueueListener | None = None


class _HandOver(logging.handlers.QueueHandler):
    """Queues each record for the log thread, its message made here; the
    log thread's handlers format it."""

    def prepare(self, record: logging.LogRecord) -> Any:
        # As QueueHandler.prepare (of Python 3.11: in place; the root
        # logger's handlers are the last to see a record), less the
        # formatting: the handlers format on the log thread.
        record.msg, record.args = record.getMessage(), None
        return record


def start() -> None:
    """Move the root logger's handlers behind a queue and a log thread."""
    global _listener
    root = logging.getLogger()
    handlers = list(root.handlers)
    if _listener is not None or not handlers:
        return
    records: queue.SimpleQueue[Any] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(
        records, *handlers, respect_handler_level=True
    )
    for handler in handlers:
        root.removeHandler(handler)
    root.addHandler(_HandOver(records))
    _listener.start()


def stop() -> None:
    """Write every record queued so far and stop the log thread; the
    handlers go back on the root logger, unless it was set up anew
    meanwhile (a reload of ``log_config_append`` replaces its handlers)."""
    global _listener
    listener, _listener = _listener, None
    if listener is None:
        return
    listener.stop()
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _HandOver)]
    for handler in ours:
        root.removeHandler(handler)
    if ours:
        for original in listener.handlers:
            root.addHandler(original)
