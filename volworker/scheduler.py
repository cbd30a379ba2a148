"""A scheduler's view of the workers' capabilities, for schedulers and tools.

    view = PoolView(stale_after=180)
    with CapabilityListener(transport, view, topic="volworker-scheduler"):
        VolumeAPI(transport).publish_service_capabilities()  # ask, don't wait
        ...
        for pool in view.pools(include_stale=False):
            print(pool.key, pool.capabilities["free_capacity_gb"])

:class:`PoolView` keeps the pools of every reporting backend keyed
``<host>@<backend>#<pool>``. A report replaces what the view holds of its
backend (``host``), so pools missing from the latest report disappear, unless
it is older than what the view holds: then it is ignored. A backend whose
latest report was taken more than ``stale_after`` seconds ago is *stale*:
its pools stay listed, flagged, so a person sees the backend went quiet,
and ``pools(include_stale=False)`` leaves them out for placement. Ages count
from the report's ``timestamp`` (when the worker's driver measured the
figures), so workers and schedulers need synchronised clocks, as in any
OpenStack deployment.

:class:`CapabilityListener` consumes the ``update_service_capabilities``
fanout of the scheduler topic into a view (a tool's way: only the fanout);
a scheduler with its own RPC server adds a :class:`CapabilityEndpoint`.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import oslo_messaging

from volworker.rpc import _amqp

__all__ = ["CapabilityEndpoint", "CapabilityListener", "Pool", "PoolView", "wait_for"]

LOG = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _parse_time(value: Any) -> datetime.datetime:
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if not isinstance(value, datetime.datetime):
        raise ValueError(f"timestamp {value!r} is not ISO 8601")
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value


@dataclass(frozen=True)
class Pool:
    """One pool as the view last heard of it."""

    #: ``<host>@<backend>#<pool>``
    key: str
    #: the backend's service host, ``<host>@<backend>``
    host: str
    name: str
    cluster_name: str | None
    #: the pool's fields, with the backend's (vendor_name ...) added
    capabilities: dict[str, Any]
    #: when the worker's driver measured the figures
    timestamp: datetime.datetime
    #: seconds since ``timestamp`` when the view was read
    age: float
    stale: bool


@dataclass(frozen=True)
class _Backend:
    cluster_name: str | None
    timestamp: datetime.datetime
    pools: dict[str, dict[str, Any]]


class PoolView:
    """The latest pools of every backend; thread-safe (see the module)."""

    def __init__(self, stale_after: float = 180.0, clock: Clock = _utcnow) -> None:
        if stale_after <= 0:
            raise ValueError("stale_after must be positive")
        self.stale_after = stale_after
        self._clock = clock
        self._lock = threading.Lock()
        self._backends: dict[str, _Backend] = {}

    def update(
        self,
        host: str,
        capabilities: Mapping[str, Any],
        timestamp: str | datetime.datetime,
        cluster_name: str | None = None,
    ) -> bool:
        """Take one backend's report; False when it is older than the one
        held. Raises ValueError for a report without a timestamp or pools."""
        taken = _parse_time(timestamp)
        raw_pools = capabilities.get("pools")
        if not isinstance(raw_pools, list):
            raise ValueError(f"report of {host} has no list of pools")
        shared = {k: v for k, v in capabilities.items() if k != "pools"}
        pools: dict[str, dict[str, Any]] = {}
        for raw in raw_pools:
            name = raw.get("pool_name") if isinstance(raw, dict) else None
            if not isinstance(name, str) or not name:
                raise ValueError(f"report of {host} has a pool without a name")
            pools[name] = {**shared, **raw}
        with self._lock:
            held = self._backends.get(host)
            if held is not None and taken < held.timestamp:
                return False
            self._backends[host] = _Backend(cluster_name, taken, pools)
        return True

    def forget(self, host: str) -> None:
        """Drop a backend (one taken out of service) and its pools."""
        with self._lock:
            self._backends.pop(host, None)

    def pools(self, *, include_stale: bool = True) -> list[Pool]:
        """Every pool, sorted by key."""
        now = self._clock()
        with self._lock:
            backends = dict(self._backends)
        found: list[Pool] = []
        for host, backend in backends.items():
            age = max((now - backend.timestamp).total_seconds(), 0.0)
            stale = age > self.stale_after
            if stale and not include_stale:
                continue
            found.extend(
                Pool(
                    f"{host}#{name}",
                    host,
                    name,
                    backend.cluster_name,
                    caps,
                    backend.timestamp,
                    age,
                    stale,
                )
                for name, caps in backend.pools.items()
            )
        return sorted(found, key=lambda pool: pool.key)

    def get(self, key: str) -> Pool | None:
        """The pool ``<host>@<backend>#<pool>``, stale or not."""
        return next((p for p in self.pools() if p.key == key), None)


class CapabilityEndpoint:
    """The scheduler side of ``update_service_capabilities``: feeds a view.

    A scheduler with an oslo.messaging RPC server on the scheduler topic adds
    this to its endpoints. ``on_update(host)`` is called after each report
    the view took.
    """

    target = oslo_messaging.Target(version="1.0")

    def __init__(
        self, view: PoolView, on_update: Callable[[str], None] = lambda host: None
    ) -> None:
        self.view = view
        self._on_update = on_update

    def update_service_capabilities(
        self,
        ctxt: dict[str, Any],
        service_name: str,
        host: str,
        capabilities: dict[str, Any],
        cluster_name: str | None = None,
        timestamp: str | None = None,
    ) -> None:
        if service_name != "volume":
            return
        try:
            taken = self.view.update(host, capabilities, timestamp or "", cluster_name)
        except (ValueError, TypeError, AttributeError) as exc:
            LOG.warning("Ignored the capabilities of %s: %s", host, exc)
            return
        if taken:
            self._on_update(host)
        else:
            LOG.debug("Ignored an older report of %s (%s)", host, timestamp)


class CapabilityListener:
    """Consumes only the scheduler topic's fanout, into a :class:`PoolView`.

    Each listener has a queue of its own on the fanout, so every listener
    gets every report; ``on_update(host)`` runs on the listener's thread.
    """

    def __init__(
        self,
        transport: oslo_messaging.Transport,
        view: PoolView,
        topic: str = "volworker-scheduler",
        on_update: Callable[[str], None] = lambda host: None,
    ) -> None:
        self.view = view
        self.topic = topic
        self._transport = transport
        self._endpoint = CapabilityEndpoint(view, on_update)
        self._listener: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> CapabilityListener:
        """Bind to the fanout (reports sent from now on arrive) and consume."""
        # Not oslo.messaging's RPC server: it would also consume the topic's
        # shared queue and take requests meant for the real scheduler,
        # failing them with NoSuchMethod.
        self._listener = _amqp.open_fanout_listener(self._transport, self.topic)
        self._thread = threading.Thread(
            target=self._run, name=f"capabilities-{self.topic}", daemon=True
        )
        self._thread.start()
        return self

    def _run(self) -> None:
        listener = self._listener
        while not listener.stopped:
            try:
                batch = listener.poll(timeout=1.0)
            except Exception:
                LOG.exception("Polling the %s fanout failed; retrying", self.topic)
                time.sleep(1)
                continue
            for message in batch:
                self._dispatch(message.ctxt, message.message)

    def _dispatch(self, ctxt: dict[str, Any], message: dict[str, Any]) -> None:
        args = message.get("args")
        if message.get("method") != "update_service_capabilities":
            LOG.debug("Ignored %s on the %s fanout", message.get("method"), self.topic)
        elif not isinstance(args, dict):
            LOG.warning("Ignored update_service_capabilities without arguments")
        else:
            try:
                self._endpoint.update_service_capabilities(ctxt, **args)
            except TypeError as exc:
                LOG.warning("Ignored update_service_capabilities: %s", exc)

    def stop(self) -> None:
        """Stop consuming and leave the fanout."""
        if self._listener is None:
            return
        self._listener.stop()
        if self._thread is not None:
            self._thread.join()
        self._listener.cleanup()
        self._listener = self._thread = None

    def __enter__(self) -> CapabilityListener:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def wait_for(
    view: PoolView, predicate: Callable[[list[Pool]], bool], timeout: float
) -> list[Pool]:
    """Poll ``view`` until ``predicate(view.pools())``; the pools, or raise
    TimeoutError."""
    deadline = time.monotonic() + timeout
    while not predicate(pools := view.pools()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the view did not get there in {timeout:g}s")
        time.sleep(0.05)
    return pools
