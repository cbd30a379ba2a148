"""log_thread: records are written by the log thread, in order, with the
message they had when logged, and stop() writes what is left."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import pytest

from volworker import log_thread


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        self.lines: list[str] = []
        self.threads: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.threads.add(threading.get_ident())


@contextlib.contextmanager
def _alone_on_root(handler: logging.Handler) -> Iterator[None]:
    """``handler`` the root logger's only one for the block; the log thread
    stopped and the root logger as it was afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    for h in saved[0]:
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        log_thread.stop()
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])


@pytest.fixture
def kept() -> Iterator[_Kept]:
    handler = _Kept()
    with _alone_on_root(handler):
        yield handler


def test_the_log_thread_writes_in_order_what_was_logged(kept: _Kept) -> None:
    log = logging.getLogger("volworker.test.log_thread")
    log_thread.start()
    assert kept not in logging.getLogger().handlers
    mutable = ["before"]
    for n in range(200):
        log.info("line %d %s", n, mutable)
    mutable[0] = "after"  # too late: the line was made when it was logged
    log.debug("below the handler's level")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    log_thread.stop()
    assert kept.lines[:200] == [f"INFO line {n} ['before']" for n in range(200)]
    assert kept.lines[200].startswith("ERROR failed\nTraceback")
    assert "ValueError: boom" in kept.lines[200]
    assert len(kept.lines) == 201
    assert kept.threads and threading.get_ident() not in kept.threads
    # Stopped, the handlers are back on the root logger, and write at once.
    assert kept in logging.getLogger().handlers
    log.warning("direct")
    assert kept.lines[-1] == "WARNING direct"
    assert threading.get_ident() in kept.threads


def test_a_root_logger_set_up_anew_keeps_its_new_handlers(kept: _Kept) -> None:
    log_thread.start()
    root = logging.getLogger()
    # as logging.config does when a reload reads log_config_append
    for handler in list(root.handlers):
        root.removeHandler(handler)
    fresh = _Kept()
    root.addHandler(fresh)
    log_thread.stop()
    assert root.handlers == [fresh]
    logging.getLogger("volworker.test.log_thread").warning("after")
    assert fresh.lines == ["WARNING after"]
    assert kept.lines == []


class _Slow(_Kept):
    """Writes slowly; asks for a flush itself on a line that says so."""

    def emit(self, record: logging.LogRecord) -> None:
        time.sleep(0.002)
        if "flush here" in record.getMessage():
            assert log_thread.flush(1)  # the log thread never waits for itself
        super().emit(record)


def test_warnings_and_flush_wait_for_every_line_before_them() -> None:
    slow = _Slow()
    log = logging.getLogger("volworker.test.log_thread")
    with _alone_on_root(slow):
        log_thread.start()
        for n in range(20):
            log.info("line %d", n)
        assert len(slow.lines) < 20  # written later, by the log thread
        log.warning("something went wrong")
        # on disk before the logging thread went on, with what came before
        assert slow.lines[-1] == "WARNING something went wrong"
        assert len(slow.lines) == 21
        log.info("flush here")
        log.info("and then")
        assert log_thread.flush(5)
        assert slow.lines[-2:] == ["INFO flush here", "INFO and then"]
