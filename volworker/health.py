"""Whether the worker serves: one truth for ``/healthz`` and the systemd
watchdog.

The process is healthy from ``READY=1`` until it is told to stop, while its
state store runs and every backend it serves is

- consuming: its intake thread takes requests off the broker;
- answering: its driver gave usable stats in at least one of the last
  ``health_stats_failures`` polling rounds. A round fails when
  ``get_volume_stats`` raises, hangs past ``stats_timeout`` or returns a
  report that makes no sense; one bad round is a blip, several in a row a
  backend that no longer works.

A backend that could not be set up at start is not served (``STATUS=``
names it) and does not count. The checks run on the event loop, which
also feeds the watchdog, so a loop that hangs fails both; ``/healthz`` asks
the loop from its own thread and answers 503 when the loop does not reply.
Under systemd a worker that stays unhealthy for ``WatchdogSec`` is killed
and restarted (the unit has ``Restart=on-failure``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from oslo_config import cfg

from volworker import systemd

__all__ = ["Health", "Verdict", "ask_loop", "health_opts", "register_opts"]

LOG = logging.getLogger(__name__)

T = TypeVar("T")

health_opts = [
    cfg.IntOpt(
        "health_stats_failures",
        default=3,
        min=1,
        help="Polling rounds in a row whose get_volume_stats fails, hangs "
        "past stats_timeout or returns an invalid report before a backend "
        "counts as not healthy: /healthz answers 503 and the systemd "
        "watchdog is no longer fed, so systemd restarts the worker.",
    ),
]

#: Seconds between two checks when systemd set no watchdog.
CHECK_INTERVAL = 5.0


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(health_opts)


def ask_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], T], timeout: float) -> T:
    """``fn()`` run on ``loop``, from any thread; TimeoutError when the
    loop does not get to it within ``timeout`` seconds."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return fn()
    answer: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if answer.set_running_or_notify_cancel():
            try:
                answer.set_result(fn())
            except BaseException as exc:
                answer.set_exception(exc)

    loop.call_soon_threadsafe(run)
    try:
        return answer.result(timeout)
    except concurrent.futures.TimeoutError:
        answer.cancel()
        raise TimeoutError(
            f"the event loop did not answer within {timeout:g}s"
        ) from None


@dataclass(frozen=True)
class Verdict:
    """The answer of one check."""

    ok: bool
    phase: str  # starting, serving or stopping
    #: each served backend: "ready", or why it is not
    backends: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "unavailable",
            "phase": self.phase,
            "backends": dict(self.backends),
            "problems": list(self.problems),
        }


@dataclass
class _Watched:
    consuming: Callable[[], bool]
    failed_rounds: Callable[[], int]


class Health:
    """The worker's health; lives on the event loop."""

    def __init__(self, stats_failures: int, store_running: Callable[[], bool]) -> None:
        self.loop = asyncio.get_running_loop()
        self.phase = "starting"
        self._stats_failures = stats_failures
        self._store_running = store_running
        self._backends: dict[str, _Watched] = {}
        self._status = ""

    def watch(
        self,
        backend: str,
        *,
        consuming: Callable[[], bool],
        failed_rounds: Callable[[], int],
    ) -> None:
        """Count ``backend`` in: it serves from now on."""
        self._backends[backend] = _Watched(consuming, failed_rounds)

    def serving(self, status: str) -> None:
        """READY=1 went out with ``STATUS=<status>``."""
        self.phase, self._status = "serving", status

    def stopping(self) -> None:
        self.phase = "stopping"

    def _backend(self, watched: _Watched) -> str:
        if not watched.consuming():
            return "not consuming"
        failed = watched.failed_rounds()
        if failed >= self._stats_failures:
            return f"its stats failed {failed} rounds in a row"
        return "ready"

    def check(self) -> Verdict:
        """Look now (on the loop)."""
        backends = {name: self._backend(w) for name, w in self._backends.items()}
        problems = [
            f"{name}: {why}" for name, why in backends.items() if why != "ready"
        ]
        if not self._store_running():
            problems.append("the state store is not running")
        ok = self.phase == "serving" and bool(backends) and not problems
        return Verdict(ok, self.phase, backends, tuple(problems))

    def check_from_thread(self, timeout: float = 2.0) -> Verdict:
        """Look from another thread (the HTTP server's)."""
        try:
            return ask_loop(self.loop, self.check, timeout)
        except TimeoutError as exc:
            return Verdict(False, self.phase, problems=(str(exc),))

    async def watchdog(self, interval: float | None) -> None:
        """Ping systemd's watchdog every ``interval`` seconds while healthy
        (with no watchdog, only look); say so when health changes."""
        healthy = True
        while True:
            verdict = self.check()
            if verdict.ok and interval is not None:
                systemd.notify("WATCHDOG=1")
            if verdict.ok != healthy and verdict.phase == "serving":
                healthy = verdict.ok
                if healthy:
                    LOG.warning("volworker is healthy again")
                    systemd.notify(f"STATUS={self._status}")
                else:
                    reasons = "; ".join(verdict.problems)
                    LOG.error("volworker is not healthy: %s", reasons)
                    systemd.notify(f"STATUS=Not healthy: {reasons}"[:500])
            await asyncio.sleep(interval or CHECK_INTERVAL)
