"""The manager of one backend: from a validated request to a finished one.

Requests arrive from the RPC thread in arrival order (``submit``). On the
event loop, one intake task takes them in that order, journals each one (the
broker's message is acknowledged only after the journal commit) and gives it
its place in line for the volumes it touches. Then the operation waits for
its turn, takes the volumes' cross-process locks and runs its handler, whose
blocking driver calls go to a bounded thread pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from volworker import exception
from volworker.context import RequestContext
from volworker.driver import VolumeDriver
from volworker.image import ImageService
from volworker.locks import Locks
from volworker.manager import connections, journal, queries, snapshots, volumes
from volworker.manager.operation import Operation, Spec
from volworker.manager.request import CALL_ACTIONS, CAST_ACTIONS, Request
from volworker.notify import Notifications
from volworker.ordering import Ordering, Ticket
from volworker.state import api, hot
from volworker.state.store import Store

__all__ = ["HANDLERS", "SPECS", "Manager"]

LOG = logging.getLogger(__name__)

T = TypeVar("T")
Handler = Callable[[Operation], Awaitable[Any]]

SPECS: dict[str, Spec] = {
    "create_volume": Spec("volume", "create", "error", creates=True),
    "delete_volume": Spec("volume", "delete", "error_deleting"),
    "extend_volume": Spec("volume", "extend", "error_extending"),
    "revert_to_snapshot": Spec("volume", "revert", "error"),
    "manage_existing": Spec("volume", "manage_existing", "error", creates=True),
    "copy_volume_to_image": Spec("volume", "copy_to_image", None),
    "create_snapshot": Spec("snapshot", "create", "error", creates=True),
    "delete_snapshot": Spec("snapshot", "delete", "error_deleting"),
    "manage_existing_snapshot": Spec(
        "snapshot", "manage_existing", "error", creates=True
    ),
    "initialize_connection": Spec("volume", "attach", None, rollback=True),
    "terminate_connection": Spec("volume", "detach", None),
}

HANDLERS: dict[str, Handler] = {
    "create_volume": volumes.create_volume,
    "delete_volume": volumes.delete_volume,
    "extend_volume": volumes.extend_volume,
    "revert_to_snapshot": volumes.revert_to_snapshot,
    "manage_existing": volumes.manage_existing,
    "copy_volume_to_image": volumes.copy_volume_to_image,
    "create_snapshot": snapshots.create_snapshot,
    "delete_snapshot": snapshots.delete_snapshot,
    "manage_existing_snapshot": snapshots.manage_existing_snapshot,
    "initialize_connection": connections.initialize_connection,
    "terminate_connection": connections.terminate_connection,
}

#: What undoes an operation a restart interrupted while it was running, for
#: the actions that cannot simply be done again.
ROLLBACKS: dict[str, Handler] = {
    "initialize_connection": connections.rollback_initialize_connection,
    "manage_existing": volumes.rollback_manage_existing,
    "manage_existing_snapshot": snapshots.rollback_manage_existing_snapshot,
}

_STOP = object()

#: Seconds between two purges of the journal's finished entries.
PURGE_INTERVAL = 6 * 3600


class Manager:
    """Runs one backend's operations; lives on the event loop."""

    def __init__(  # noqa: PLR0913 - the manager's collaborators
        self,
        *,
        service: str,
        owner: str,
        driver: VolumeDriver,
        store: Store,
        locks: Locks,
        notifications: Notifications,
        image_service: ImageService,
        executor: concurrent.futures.Executor,
        max_concurrent: int,
        journal_retention: datetime.timedelta = datetime.timedelta(days=7),
    ) -> None:
        self.service = service
        self.owner = owner
        self.driver = driver
        self.store = store
        self.locks = locks
        self.notifications = notifications
        self.image_service = image_service
        self.executor = executor
        self.ordering = Ordering(max_concurrent)
        self.journal_retention = journal_retention
        self.stats: dict[str, Any] = {}
        self.on_publish_request: Callable[[], None] = lambda: None
        #: fresh capabilities from the driver (get_capabilities discover=True)
        self.discover_stats: Callable[[], Awaitable[dict[str, Any]]] | None = None
        self._loop = asyncio.get_running_loop()
        self._intake: asyncio.Queue[Any] = asyncio.Queue()
        self._intake_task: asyncio.Task[None] | None = None
        self._housekeeping: asyncio.Future[None] = self._loop.create_future()
        self._waiting: set[asyncio.Task[None]] = set()
        self._running: set[asyncio.Task[None]] = set()

    # -- entry points for other threads -----------------------------------

    def submit(self, request: Request) -> None:
        """Hand a request over, from one thread, in arrival order.

        The journal entry of an operation (or the read of a query about
        records) goes to the store at once: the store keeps arrival order,
        so a query sees every request that arrived before it, and a query
        needs no trip through the event loop.
        """
        work = queries.record_work(self.service, request) if request.respond else None
        if work is not None:
            done = self.store.submit(work)
            done.add_done_callback(functools.partial(queries.answer_from, request))
            return
        journaled = None
        spec = SPECS.get(request.action)
        if spec is not None:
            journaled = self.store.defer(
                functools.partial(
                    journal.accept,
                    service=self.service,
                    owner=self.owner,
                    request=request,
                    kind=spec.kind,
                    resource_id=request.args[spec.kind]["id"],
                    creates=spec.creates,
                ),
                loop=self._loop,
            )
        self._loop.call_soon_threadsafe(self._intake.put_nowait, (request, journaled))

    def reject(
        self,
        method: str,
        args: dict[str, Any],
        error: exception.VolworkerError,
        context: RequestContext,
    ) -> None:
        """Record and announce a cast refused before it was journaled."""
        item = (method, args, error, context)
        self._loop.call_soon_threadsafe(self._intake.put_nowait, item)

    # -- intake -----------------------------------------------------------

    def start(self) -> None:
        self._intake_task = self._loop.create_task(self._intake_loop())
        self._housekeeping = self._loop.create_task(self._purge_journal())

    async def _purge_journal(self) -> None:
        """Drop finished journal entries past their retention, now and then."""
        while True:
            cutoff = datetime.datetime.now(datetime.UTC) - self.journal_retention
            try:
                purged = await self.store.run(
                    functools.partial(
                        api.purge_operations, service=self.service, older_than=cutoff
                    )
                )
            except exception.VolworkerError as exc:
                LOG.warning("Could not purge the journal: %s", exc)
            else:
                if purged:
                    LOG.info("Purged %d finished journal entries", purged)
            await asyncio.sleep(PURGE_INTERVAL)

    async def _intake_loop(self) -> None:
        while (item := await self._intake.get()) is not _STOP:
            try:
                if isinstance(item[0], Request):
                    await self._take(*item)
                else:
                    await self._record_rejected(*item)
            except Exception:
                LOG.exception("Intake of %r failed", item)

    async def _take(
        self,
        request: Request,
        journaled: asyncio.Future[journal.Accepted | None] | None,
    ) -> None:
        if journaled is None:
            await self._take_unjournaled(request)
            return
        keys = await self._keys(request)
        ticket = self.ordering.enqueue(keys)
        self._spawn(self._execute(request, ticket, journaled), self._waiting)

    async def _take_unjournaled(self, request: Request) -> None:
        if request.action in queries.QUERIES:
            if request.respond is None:
                request.acknowledge()
                LOG.warning("Ignored %s sent as a cast: it is a call", request.action)
                return
            self._spawn(queries.answer(self, request), self._running)
            return
        if request.action == "publish_service_capabilities":
            request.acknowledge()
            self.on_publish_request()
            return
        LOG.error("No handler for %s", request.action)

    async def _keys(self, request: Request) -> set[str]:
        """The volumes a request touches: its order and its locks."""
        if "snapshot" in request.args:
            return {request.args["snapshot"]["volume_id"]}
        volume = request.args["volume"]
        keys = {volume["id"]}
        if request.action == "create_volume":
            if volume.get("source_volid"):
                keys.add(volume["source_volid"])
            elif volume.get("snapshot_id"):
                source = await self.store.run(
                    functools.partial(
                        _snapshot_volume_id, snapshot_id=volume["snapshot_id"]
                    )
                )
                if source:
                    keys.add(source)
        return keys

    def _spawn(
        self, coro: Coroutine[Any, Any, None], group: set[asyncio.Task[None]]
    ) -> None:
        task: asyncio.Task[None] = self._loop.create_task(coro)
        group.add(task)
        task.add_done_callback(group.discard)

    # -- execution --------------------------------------------------------

    async def _execute(
        self,
        request: Request,
        ticket: Ticket,
        journaled: asyncio.Future[journal.Accepted | None],
    ) -> None:
        try:
            accepted = await journaled
        except Exception as exc:
            ticket.release()
            self._journal_failed(request, exc)
            return
        except asyncio.CancelledError:
            ticket.release()
            raise
        request.acknowledge()
        if accepted is None:
            ticket.release()
            LOG.info(
                "[%s] Ignored %s for %s: already received",
                request.context.request_id,
                request.action,
                ",".join(ticket.keys),
            )
            return
        spec = SPECS[request.action]
        await self._run(Operation(self, request, accepted.seq, spec, accepted), ticket)

    def _journal_failed(self, request: Request, error: Exception) -> None:
        request_id = request.context.request_id
        if journal.is_transient(error):
            # NOTE: not acknowledged: the broker delivers it again later.
            LOG.error(
                "[%s] Could not journal %s: %s", request_id, request.action, error
            )
            refusal: exception.VolworkerError = exception.VolumeBackendAPIException(
                data=f"the journal is unavailable: {error}"
            )
        else:
            # NOTE: this request can never be journaled; keeping it on the
            # broker would only bring it back after every restart.
            LOG.error(
                "[%s] Refused %s: it cannot be journaled: %s",
                request_id,
                request.action,
                error,
            )
            refusal = exception.InvalidInput(reason=f"it cannot be stored: {error}")
            request.acknowledge()
            if request.respond is None:
                self.reject(request.action, request.args, refusal, request.context)
        if request.respond:
            request.respond(None, refusal)

    async def _run(
        self, op: Operation, ticket: Ticket, handler: Handler | None = None
    ) -> None:
        task = asyncio.current_task()
        try:
            async with ticket:
                if task is not None:
                    self._waiting.discard(task)
                    self._running.add(task)
                async with self.locks.hold(ticket.keys, op.request_id):
                    result = await (handler or HANDLERS[op.request.action])(op)
        except asyncio.CancelledError:
            raise  # left in the journal; done after the next start
        except Exception as exc:
            error = exc
            if not isinstance(exc, exception.VolworkerError):
                LOG.exception(
                    "[%s] %s failed unexpectedly", op.request_id, op.request.action
                )
                error = exception.VolumeBackendAPIException(data=str(exc))
            try:
                await op.fail(error)
            except Exception:
                LOG.exception("[%s] Could not record the failure", op.request_id)
            if op.request.respond:
                op.request.respond(None, error)
        else:
            if op.request.respond:
                op.request.respond(result, None)
        finally:
            ticket.release()
            if task is not None:
                self._running.discard(task)

    async def _record_rejected(
        self,
        method: str,
        args: dict[str, Any],
        error: exception.VolworkerError,
        context: RequestContext,
    ) -> None:
        spec = SPECS.get(method)
        if spec is None or method not in CAST_ACTIONS | CALL_ACTIONS:
            return
        record = None
        if spec.creates:
            record = await self._record_error(
                functools.partial(
                    journal.record_rejected,
                    service=self.service,
                    kind=spec.kind,
                    args=args,
                    error=str(error),
                )
            )
        obj = args.get(spec.kind)
        raw_id = obj.get("id") if isinstance(obj, dict) else None
        payload = dict(
            record or {"id": str(raw_id)[:64] if raw_id is not None else None}
        )
        payload["error"] = str(error)
        self.notifications.emit(context, spec.kind, spec.event, "error", payload)

    async def _record_error(self, work: Callable[[Any], Any]) -> Any:
        """The record of a refused create, or None when none can be kept."""
        try:
            return await self.store.run(work)
        except Exception as exc:
            LOG.warning("Could not record the refused request: %s", exc)
            return None

    # -- services for handlers -------------------------------------------

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._loop.run_in_executor(
            self.executor, functools.partial(fn, *args)
        )

    async def call_driver(
        self, request_id: str, method: str, *args: Any, **kwargs: Any
    ) -> Any:
        """Call ``driver.<method>`` on the pool; foreign errors become
        VolumeBackendAPIException with the cause kept."""
        started = time.monotonic()
        call = functools.partial(getattr(self.driver, method), *args, **kwargs)
        try:
            return await self._loop.run_in_executor(self.executor, call)
        except exception.VolworkerError as exc:
            raise exception.contract_error(exc) from exc
        except Exception as exc:
            LOG.exception("[%s] driver.%s raised", request_id, method)
            raise exception.VolumeBackendAPIException(
                data=f"{method}: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            LOG.debug(
                "[%s] driver.%s took %.3fs",
                request_id,
                method,
                time.monotonic() - started,
            )

    def capabilities_hint(self, key: str, default: Any) -> Any:
        """A value from the latest stats report (first pool, then top level)."""
        pools = self.stats.get("pools") or [{}]
        return pools[0].get(key, self.stats.get(key, default))

    # -- recovery and stop -----------------------------------------------

    async def recover(self) -> int:
        """Queue every journaled operation that did not finish, in order.

        Call before consuming: recovered work goes ahead of new requests.
        Returns how many operations were recovered.
        """
        pending = await self.store.run(
            functools.partial(journal.unfinished, service=self.service)
        )
        for entry in pending:
            request = Request(
                entry["action"],
                entry["args"],
                RequestContext(
                    request_id=entry["request_id"] or RequestContext().request_id
                ),
            )
            spec = SPECS[entry["action"]]
            if entry["action"] in CALL_ACTIONS and entry["state"] == "accepted":
                # NOTE: the caller of a call that never started has given up.
                await self.store.run(
                    functools.partial(journal.abandon, seq=entry["seq"])
                )
                continue
            ticket = self.ordering.enqueue(await self._keys(request))
            op = Operation(self, request, entry["seq"], spec)
            handler = (
                ROLLBACKS.get(entry["action"]) if entry["state"] == "running" else None
            )
            LOG.info(
                "Recovering %s %s (journal %d, %s)",
                entry["action"],
                op.resource_id,
                entry["seq"],
                "rolling back" if handler else "redoing",
            )
            self._spawn(self._run(op, ticket, handler), self._waiting)
        return len(pending)

    def restore_exports(self) -> None:
        """Have the driver restore (and prune) every volume's exports, in the
        background: each volume's turn is queued like an operation's."""
        self._spawn(self._restore_exports(), self._waiting)

    async def _restore_exports(self) -> None:
        ids = await self.store.run(
            functools.partial(
                hot.volume_ids, service=self.service, statuses=("available", "in-use")
            )
        )
        for volume_id in ids:
            ticket = self.ordering.enqueue({volume_id})
            self._spawn(self._ensure_export(volume_id, ticket), self._waiting)
        LOG.info("Restoring the exports of %d volume(s)", len(ids))

    async def _ensure_export(self, volume_id: str, ticket: Ticket) -> None:
        try:
            async with ticket, self.locks.hold(ticket.keys, "recovery"):
                _, volume = await self.store.run(
                    functools.partial(
                        journal.load_volume, service=self.service, volume_id=volume_id
                    )
                )
                await self.call_driver(
                    "recovery", "ensure_export", RequestContext.admin(), volume
                )
        except (exception.VolumeNotFound, exception.SnapshotNotFound) as exc:
            LOG.debug("No exports to restore for volume %s: %s", volume_id, exc)
        except exception.VolworkerError as exc:
            LOG.warning(
                "Could not restore the exports of volume %s: %s", volume_id, exc
            )
        finally:
            ticket.release()

    async def stop(self, timeout: float) -> bool:
        """Stop taking work, let running operations finish within
        ``timeout``; operations still waiting stay journaled for the next
        start. Returns whether everything running finished."""
        self._housekeeping.cancel()
        self._intake.put_nowait(_STOP)
        if self._intake_task is not None:
            await self._intake_task
        for task in list(self._waiting):
            task.cancel()
        if self._waiting:
            await asyncio.gather(*self._waiting, return_exceptions=True)
        if not self._running:
            return True
        LOG.info("Waiting up to %.0fs for %d operation(s)", timeout, len(self._running))
        _, pending = await asyncio.wait(set(self._running), timeout=timeout)
        for task in pending:
            task.cancel()
        return not pending


def _snapshot_volume_id(session: Any, snapshot_id: str) -> str | None:
    row = api.get_snapshot(session, snapshot_id)
    return row.volume_id if row is not None else None
