"""The state store: one thread that commits the worker's state in batches.

Every read and write of the state database is a *work item*: a function that
takes a :class:`~sqlalchemy.orm.Session` and returns plain data. One thread
runs the items strictly in submission order. It drains whatever is queued (up
to ``batch_max`` items) and runs that batch in one transaction, each item in a
SAVEPOINT of its own, so a failing item fails only its own future and the
rest of the batch commits. Results reach the futures only after the commit;
when the commit fails, every future of the batch gets its error.

Many producers thus share one fsync (group commit), and an item submitted
after another always sees that other's writes.

Work items must return plain data (dicts, tuples, dataclasses), not ORM
instances: a row handed out of its work item is detached and stale. Sessions
do not expire on commit, so a row's loaded attributes stay readable, but
convert rows (``to_dict()``, ``to_volume()``) inside the work function. A work
item runs on the store thread: it must not block on other store futures (that
would wait for itself) or do slow work other than the database's.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from oslo_config import cfg
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from volworker import batches, exception
from volworker.handback import hand_back
from volworker.state import _engine, migrations, options

__all__ = ["Store", "StoreConnectionLost", "StoreError", "StoreNotRunning"]

LOG = logging.getLogger(__name__)

T = TypeVar("T")


class StoreError(exception.VolworkerError):
    msg_fmt = "State store failure: %(reason)s"


class StoreNotRunning(StoreError):
    msg_fmt = "The state store is not running: %(reason)s"


class StoreConnectionLost(StoreError):
    msg_fmt = (
        "Lost the connection to the state database %(url)s; the batch was "
        "not committed (the next one reconnects): %(reason)s"
    )


@dataclass
class _Item(Generic[T]):
    work: Callable[[Session], T]
    #: for submit(): the future it returned (None for defer())
    future: Future[T] | None
    #: for defer(): the awaiting loop's future, settled with its batch's others
    awaited: asyncio.Future[T] | None = None


# Queued after the last item by stop(); the thread exits on it.
_STOP = None


class Store:
    """Runs work items on the state database, in order, in batches."""

    def __init__(
        self, url: str | URL, *, sqlite_synchronous: str = "FULL", batch_max: int = 500
    ) -> None:
        if batch_max < 1:
            raise ValueError("batch_max must be at least 1")
        self.url = make_url(url)
        self.sqlite_synchronous = sqlite_synchronous
        self.batch_max = batch_max
        self._queue: queue.SimpleQueue[_Item[Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._accepting = False
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts) -> Store:
        """A store configured by ``[database]`` (``state_path`` must be known)."""
        options.register_opts(conf)
        group = conf[options.GROUP]
        return cls(
            group.connection,
            sqlite_synchronous=group.sqlite_synchronous,
            batch_max=group.batch_max,
        )

    def __repr__(self) -> str:
        return f"<Store {_engine.safe_url(self.url)}>"

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise StoreNotRunning(reason="not started")
        return self._engine

    @property
    def running(self) -> bool:
        return self._accepting

    def start(self) -> None:
        """Connect, upgrade the schema to head and start the worker thread."""
        with self._lock:
            if self._thread is not None:
                raise StoreError(reason="a store starts only once")
            started = time.monotonic()
            engine = _engine.create_engine(
                self.url, sqlite_synchronous=self.sqlite_synchronous
            )
            try:
                migrations.upgrade(engine)
            except BaseException:
                engine.dispose()
                raise
            self._engine = engine
            self._sessions = sessionmaker(engine, expire_on_commit=False)
            self._thread = threading.Thread(
                target=self._serve, name="volworker-state", daemon=True
            )
            self._accepting = True
            self._thread.start()
        LOG.info(
            "State store at %s ready in %.3fs",
            _engine.safe_url(self.url),
            time.monotonic() - started,
        )

    def stop(self, timeout: float | None = None) -> None:
        """Run what is queued, then stop the thread and close the connections.

        New work is refused at once. When the queue is not done within
        ``timeout`` seconds, this returns anyway (with a warning) and the
        thread closes the connections once it has finished.
        """
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
            self._queue.put(_STOP)
        thread = self._thread
        assert thread is not None
        thread.join(timeout)
        if thread.is_alive():
            LOG.warning(
                "State store still busy after %ss; it finishes in the background",
                timeout,
            )
        else:
            LOG.info("State store at %s stopped", _engine.safe_url(self.url))

    def _put(self, item: _Item[T]) -> None:
        with self._lock:
            if not self._accepting:
                raise StoreNotRunning(reason="work submitted while stopped")
            self._queue.put(item)

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        """Queue ``work``; its future completes once its batch is committed.

        Thread-safe; items run in the order they were submitted. A future
        cancelled before its batch starts is skipped.
        """
        future: Future[T] = Future()
        self._put(_Item(work, future))
        return future

    def defer(
        self,
        work: Callable[[Session], T],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> asyncio.Future[T]:
        """Queue ``work`` now; await the future this returns, on ``loop``
        (by default the running one), for its result. Thread-safe."""
        awaited: asyncio.Future[T] = asyncio.Future(
            loop=loop or asyncio.get_running_loop()
        )
        self._put(_Item(work, None, awaited))
        return awaited

    async def run(self, work: Callable[[Session], T]) -> T:
        """Submit ``work`` and await its result from an asyncio loop."""
        return await self.defer(work)

    # The worker thread.

    def _serve(self) -> None:
        try:
            stopping = False
            while not stopping:
                batch, stopping = batches.take(self._queue, self.batch_max, _STOP)
                try:
                    self._run_batch(batch)
                except Exception:
                    # The futures are settled already; keep serving.
                    LOG.exception("State store thread error after a batch")
        finally:
            self.engine.dispose()

    def _run_batch(self, batch: Sequence[_Item[Any]]) -> None:
        # A submitted item whose future was cancelled while queued is skipped
        # here; a deferred one runs (its awaiter may have left, not undone it).
        live = [
            item
            for item in batch
            if item.future is None or item.future.set_running_or_notify_cancel()
        ]
        if not live:
            return
        outcomes = self._run_fast(live) or self._run_isolated(live)
        awaited = []
        for item, (ok, value) in zip(live, outcomes, strict=True):
            if item.future is not None:
                if ok:
                    item.future.set_result(value)
                else:
                    item.future.set_exception(value)
            if item.awaited is not None:
                awaited.append((item.awaited, ok, value))
        # One wake-up of each awaiting loop per batch (or fewer), not per item.
        hand_back(awaited)

    def _run_fast(self, live: Sequence[_Item[Any]]) -> list[tuple[bool, Any]] | None:
        """Every item in one transaction without savepoints; None if any
        item (or the commit) failed and nothing was kept."""
        assert self._sessions is not None
        # Items almost never fail, and a SAVEPOINT per item costs as
        # much as the item; on a failure the batch is simply done again,
        # each item isolated (items only touch the database).
        try:
            with self._sessions() as session, session.begin():
                results = []
                for item in live:
                    results.append((True, item.work(session)))
                    if session.identity_map:
                        session.expunge_all()
        except BaseException as exc:
            LOG.debug(
                "State store batch of %d items redone item by item: %s", len(live), exc
            )
            return None
        return results

    def _run_isolated(self, live: Sequence[_Item[Any]]) -> list[tuple[bool, Any]]:
        """Each item in its own SAVEPOINT; when the batch fails as a whole,
        every item gets its error."""
        assert self._sessions is not None
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._sessions() as session, session.begin():
                outcomes.extend(_run_item(session, item.work) for item in live)
        except BaseException as exc:
            error = self._batch_error(exc, outcomes)
            LOG.error("State store batch of %d items failed: %s", len(live), error)
            return [(False, error)] * len(live)
        return outcomes

    def _batch_error(
        self, exc: BaseException, outcomes: Sequence[tuple[bool, Any]]
    ) -> BaseException:
        """A lost connection, wherever it showed first, becomes a clear error."""
        candidates = [exc, *(value for ok, value in outcomes if not ok)]
        for candidate in candidates:
            if isinstance(candidate, DBAPIError) and candidate.connection_invalidated:
                lost = StoreConnectionLost(
                    url=_engine.safe_url(self.url), reason=str(candidate.orig)
                )
                lost.__cause__ = candidate
                return lost
        return exc


def _run_item(session: Session, work: Callable[[Session], Any]) -> tuple[bool, Any]:
    """Run one item in its own SAVEPOINT: ``(True, result)`` or ``(False, error)``."""
    try:
        with session.begin_nested():
            return True, work(session)
    except BaseException as exc:
        # Like concurrent.futures, any error belongs to the item's
        # future; the thread itself must go on serving.
        LOG.debug("State store work item %r failed: %s", work, exc)
        return False, exc
    finally:
        # Items may write with plain SQL; no item may see rows an
        # earlier one loaded into the session's identity map.
        if session.identity_map:
            session.expunge_all()
