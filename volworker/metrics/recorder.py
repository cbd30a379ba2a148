"""Counting as things happen, in the thread that already does the work.

A backend's parts are handed a :class:`Recorder` and call it at the points
worth counting: an operation's end, a driver call, a message taken, a call
answered, a capability report sent. The base class counts nothing: it is
what they get with metrics off, and what tests get by default.
:class:`BackendMetrics` counts into the families of :mod:`.families`
through children bound to their labels once, so the hot path pays a dict
lookup and an increment, never a label lookup.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Collection
from typing import Any

from volworker.metrics import families

__all__ = ["OFF", "BackendMetrics", "Recorder", "intake_held"]

#: What a method or error label says when the wire named something unknown.
OTHER = "other"


class Recorder:
    """The recording points of one backend; this one records nothing."""

    #: when the figures of the last published capability report were taken
    #: (seconds since the epoch), None before the first
    report_taken: float | None = None

    def operation(self, action: str, outcome: str, started: float) -> None:
        """An operation ended; ``started`` is its ``time.monotonic()``."""

    def driver_call(self, method: str, started: float) -> None:
        """A driver method returned or raised."""

    def message_taken(self) -> None:
        """A message came off the broker."""

    def rpc_call(self, method: str, error: BaseException | None) -> None:
        """A call was answered, with a result or ``error``."""

    def cast_refused(self, method: str, error: BaseException) -> None:
        """A cast was refused on arrival."""

    def report_sent(self, timestamp: str) -> None:
        """A capability report whose figures were taken at ``timestamp``
        (ISO 8601) went to the broker."""

    def stats_failed(self) -> None:
        """A polling round got no usable stats from the driver."""

    def setup_attempt(self) -> None:
        """The driver's setup is being tried."""

    def recovered(self, fate: str) -> None:
        """A start, or a takeover of a dead member's work, found an operation
        unfinished (fate ``redo`` or ``undo``)."""

    def describe_driver(self, driver: str, version: str) -> None:
        """The backend is served by ``driver`` at ``version``."""


#: What a part counts with when metrics are off (and in tests).
OFF = Recorder()


class BackendMetrics(Recorder):
    """Records one backend's events in the process's metric families."""

    def __init__(self, backend: str, methods: Collection[str] = ()) -> None:
        self.backend = backend
        #: the contract's methods: anything else is labelled "other"
        self._methods = frozenset(methods)
        self._operations: dict[tuple[str, str], Any] = {}
        self._durations: dict[str, Any] = {}
        self._driver_calls: dict[str, Any] = {}
        self._calls: dict[tuple[str, str], Any] = {}
        self._messages = families.INTAKE_MESSAGES.labels(backend)
        self._reports = families.CAPABILITY_REPORTS.labels(backend)
        self._rounds_failed = families.CAPABILITY_ROUNDS_FAILED.labels(backend)
        self._setup_attempts = families.SETUP_ATTEMPTS.labels(backend)
        # Shown at 0 from the start, so that rate() and the alerts have a
        # series before the first event.
        families.INTAKE_STALLS.labels(backend)
        families.INTAKE_STALLED_SECONDS.labels(backend)
        for fate in ("redo", "undo"):
            families.RECOVERED.labels(backend, fate)

    def describe_driver(self, driver: str, version: str) -> None:
        families.BACKEND_INFO.labels(self.backend).info(
            {"driver": driver, "version": version}
        )

    def operation(self, action: str, outcome: str, started: float) -> None:
        elapsed = time.monotonic() - started
        counter = self._operations.get((action, outcome))
        if counter is None:
            counter = families.OPERATIONS.labels(self.backend, action, outcome)
            self._operations[(action, outcome)] = counter
        counter.inc()
        histogram = self._durations.get(action)
        if histogram is None:
            histogram = families.OPERATION_SECONDS.labels(self.backend, action)
            self._durations[action] = histogram
        histogram.observe(elapsed)

    def driver_call(self, method: str, started: float) -> None:
        elapsed = time.monotonic() - started
        histogram = self._driver_calls.get(method)
        if histogram is None:
            histogram = families.DRIVER_CALL_SECONDS.labels(self.backend, method)
            self._driver_calls[method] = histogram
        histogram.observe(elapsed)

    def message_taken(self) -> None:
        self._messages.inc()

    def _method(self, method: str) -> str:
        return method if method in self._methods else OTHER

    def rpc_call(self, method: str, error: BaseException | None) -> None:
        key = (method, "none" if error is None else type(error).__name__)
        counter = self._calls.get(key)
        if counter is None:
            counter = families.RPC_CALLS.labels(
                self.backend, self._method(method), key[1]
            )
            self._calls[key] = counter
        counter.inc()

    def cast_refused(self, method: str, error: BaseException) -> None:
        families.RPC_REFUSED_CASTS.labels(
            self.backend, self._method(method), type(error).__name__
        ).inc()

    def report_sent(self, timestamp: str) -> None:
        self._reports.inc()
        self.report_taken = datetime.datetime.fromisoformat(timestamp).timestamp()

    def stats_failed(self) -> None:
        self._rounds_failed.inc()

    def setup_attempt(self) -> None:
        self._setup_attempts.inc()

    def recovered(self, fate: str) -> None:
        families.RECOVERED.labels(self.backend, fate).inc()


_held_since: dict[str, float] = {}
_held_lock = threading.Lock()


def intake_held(server: str, holding: bool) -> None:
    """The bounded intake's hook: call it on every turn of the intake loop
    of ``server`` (``<host>@<backend>``) with whether casts are being held
    back because the backlog is full. A turn that starts holding counts a
    stall; the turn that stops adds the stall's seconds."""
    if holding == (server in _held_since):
        return
    backend = server.partition("@")[2] or server
    with _held_lock:
        if holding:
            _held_since[server] = time.monotonic()
            families.INTAKE_STALLS.labels(backend).inc()
        else:
            began = _held_since.pop(server)
            families.INTAKE_STALLED_SECONDS.labels(backend).inc(
                time.monotonic() - began
            )
