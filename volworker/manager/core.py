"""The manager of one backend: from a validated request to a finished one.

Requests arrive from the RPC thread in arrival order (``submit``). A
command's journal entry goes to the state store at once, and the request to
the event loop, where one intake task takes requests in that order and gives
each command its place in line for the volumes it touches (the broker's
message is acknowledged only after the journal commit). Then the operation
waits for its turn, takes the volumes' cross-process locks and runs its
handler, whose blocking driver calls go to a bounded thread pool.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from volworker import exception
from volworker.context import RequestContext
from volworker.locks import Locks
from volworker.manager import queries, recovery, refusals, transitions
from volworker.manager.actions import ACTIONS, volumes_touched
from volworker.manager.backlog import Backlog, default_limit
from volworker.manager.operation import Command, Operation
from volworker.manager.queries import Query
from volworker.manager.request import Request
from volworker.manager.runtime import Runtime
from volworker.ordering import Ordering, Ticket
from volworker.state import operations

__all__ = ["Manager"]

LOG = logging.getLogger(__name__)

#: Seconds between two purges of the journal's finished entries.
PURGE_INTERVAL = 6 * 3600


@dataclass(frozen=True)
class _Refused:
    """A cast the RPC layer refused before it could be journaled."""

    method: str
    args: dict[str, Any]
    error: exception.VolworkerError
    context: RequestContext


_STOP = object()


class Manager:
    """Runs one backend's operations; lives on the event loop."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        locks: Locks,
        max_concurrent: int,
        journal_retention: datetime.timedelta = datetime.timedelta(days=7),
        intake_limit: int | None = None,
    ) -> None:
        self.runtime = runtime
        self.locks = locks
        self.ordering = Ordering(max_concurrent)
        #: accepted commands not yet finished, for the RPC intake to respect
        self.backlog = Backlog(default_limit(intake_limit, max_concurrent))
        self.journal_retention = journal_retention
        self._loop = asyncio.get_running_loop()
        self._intake: asyncio.Queue[Any] = asyncio.Queue()
        self._intake_task: asyncio.Task[None] | None = None
        self._housekeeping: asyncio.Future[None] = self._loop.create_future()
        self._waiting: set[asyncio.Task[None]] = set()
        self._running: set[asyncio.Task[None]] = set()

    # -- entry points for other threads -----------------------------------

    def submit(self, request: Request) -> None:
        """Hand a request over, from one thread, in arrival order.

        A command's journal entry (or the read that answers a query about
        records) goes to the store at once: the store keeps arrival order,
        so a query sees every request that arrived before it, and needs no
        trip through the event loop.
        """
        runtime = self.runtime
        action = ACTIONS.get(request.action)
        journaled = None
        if isinstance(action, Query):
            if action.records is not None and request.respond:
                done = runtime.store.submit(
                    action.records(runtime.service, request.args)
                )
                done.add_done_callback(functools.partial(queries.answer_from, request))
                return
        elif action is not None:
            self.backlog.taken()
            journaled = runtime.store.defer(
                functools.partial(
                    transitions.accept,
                    service=runtime.service,
                    owner=runtime.owner,
                    request=request,
                    kind=action.kind,
                    resource_id=request.args[action.kind]["id"],
                    creates=action.creates,
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
        refused = _Refused(method, args, error, context)
        self._loop.call_soon_threadsafe(self._intake.put_nowait, refused)

    # -- intake -----------------------------------------------------------

    def start(self) -> None:
        self._intake_task = self._loop.create_task(self._intake_loop())
        self._housekeeping = self._loop.create_task(self._purge_journal())

    async def _purge_journal(self) -> None:
        """Drop finished journal entries past their retention, now and then."""
        while True:
            cutoff = datetime.datetime.now(datetime.UTC) - self.journal_retention
            try:
                purged = await self.runtime.db(
                    functools.partial(
                        operations.purge,
                        service=self.runtime.service,
                        older_than=cutoff,
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
                if isinstance(item, _Refused):
                    await refusals.record_refused(
                        self.runtime, item.method, item.args, item.error, item.context
                    )
                else:
                    await self._take(*item)
            except Exception:
                LOG.exception("Intake of %r failed", item)

    async def _take(
        self,
        request: Request,
        journaled: asyncio.Future[transitions.Accepted | None] | None,
    ) -> None:
        action = ACTIONS.get(request.action)
        if isinstance(action, Command) and journaled is not None:
            try:
                keys = await volumes_touched(self.runtime, request)
            except BaseException:
                self.backlog.finished()
                raise
            ticket = self.ordering.enqueue(keys)
            run = self._execute(request, action, ticket, journaled)
            task = self._spawn(run, self._waiting)
            task.add_done_callback(lambda _: self.backlog.finished())
        elif isinstance(action, Query):
            await self._query(action, request)
        else:
            LOG.error("No handler for %s", request.action)

    async def _query(self, query: Query, request: Request) -> None:
        if request.respond is None:
            request.acknowledge()
            if query.reply:
                LOG.warning("Ignored %s sent as a cast: it is a call", request.action)
            else:
                await query.run(self.runtime, request)
            return
        self._spawn(queries.answer(query, self.runtime, request), self._running)

    def _spawn(
        self, coro: Coroutine[Any, Any, None], group: set[asyncio.Task[None]]
    ) -> asyncio.Task[None]:
        task: asyncio.Task[None] = self._loop.create_task(coro)
        group.add(task)
        task.add_done_callback(group.discard)
        return task

    # -- execution --------------------------------------------------------

    async def _execute(
        self,
        request: Request,
        command: Command,
        ticket: Ticket,
        journaled: asyncio.Future[transitions.Accepted | None],
    ) -> None:
        try:
            accepted = await journaled
        except Exception as exc:
            ticket.release()
            refusal = refusals.journal_failed(request, exc)
            if refusal is not None and request.respond is None:
                await refusals.record_refused(
                    self.runtime, request.action, request.args, refusal, request.context
                )
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
        op = Operation(self.runtime, request, accepted.seq, command, accepted)
        await self._run(op, ticket)

    async def _run(self, op: Operation, ticket: Ticket, *, undo: bool = False) -> None:
        handler = op.command.undo if undo and op.command.undo else op.command.run
        respond = op.request.respond
        try:
            result = await self._in_turn(ticket, op.request_id, lambda: handler(op))
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
            if respond:
                respond(None, error)
        else:
            if respond:
                respond(result, None)

    async def _in_turn(
        self, ticket: Ticket, request_id: str, work: Callable[[], Awaitable[Any]]
    ) -> Any:
        """Run ``work`` once the ticket's turn comes, under its volumes' locks;
        the ticket is released however it ends."""
        task = asyncio.current_task()
        try:
            async with ticket:
                if task is not None:
                    self._waiting.discard(task)
                    self._running.add(task)
                async with self.locks.hold(ticket.keys, request_id):
                    return await work()
        finally:
            ticket.release()
            if task is not None:
                self._running.discard(task)

    # -- recovery and stop -----------------------------------------------

    async def recover(self) -> int:
        """Queue every journaled operation that did not finish, in order.

        Call before consuming: recovered work goes ahead of new requests.
        Returns how many operations were recovered.
        """
        resumed = await recovery.unfinished(self.runtime)
        for item in resumed:
            keys = await volumes_touched(self.runtime, item.request)
            ticket = self.ordering.enqueue(keys)
            op = Operation(self.runtime, item.request, item.seq, item.command)
            undo = item.fate is recovery.Fate.UNDO
            self._spawn(self._run(op, ticket, undo=undo), self._waiting)
        return len(resumed)

    def restore_exports(self) -> None:
        """Have the driver restore (and prune) every volume's exports, in the
        background: each volume's turn is queued like an operation's."""
        self._spawn(self._restore_exports(), self._waiting)

    async def _restore_exports(self) -> None:
        ids = await recovery.exportable(self.runtime)
        for volume_id in ids:
            ticket = self.ordering.enqueue({volume_id})
            self._spawn(self._restore_export(ticket, volume_id), self._waiting)
        LOG.info("Restoring the exports of %d volume(s)", len(ids))

    async def _restore_export(self, ticket: Ticket, volume_id: str) -> None:
        restore = functools.partial(recovery.restore_export, self.runtime, volume_id)
        try:
            await self._in_turn(ticket, "recovery", restore)
        except exception.VolworkerError as exc:
            LOG.warning(
                "Could not restore the exports of volume %s: %s", volume_id, exc
            )

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
