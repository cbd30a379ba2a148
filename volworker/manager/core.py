"""The manager of one backend: from a validated request to a finished one.

Requests arrive from the RPC thread in arrival order (``submit``). A
command's journal entry goes to the state store at once, and the request to
the event loop, where one intake task takes requests in that order and gives
each command its place in line for the volumes it touches (the broker's
message is acknowledged only after the journal commit). Then the operation
waits for its turn, takes the volumes' cross-process locks and runs its
handler, whose blocking driver calls go to a bounded thread pool.

In a cluster, the members share the journal, and a volume's operations run
in journal order whichever member accepted them: an operation takes its
place in line only once every earlier unfinished operation on its volumes
is finished or already in line here (taken over from a dead member, say).
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from volworker import exception, handback
from volworker.context import RequestContext
from volworker.coordination import Coordination
from volworker.manager import moved, queries, recovery, refusals, transitions
from volworker.manager.actions import ACTIONS, volumes_touched
from volworker.manager.backlog import Backlog, default_limit
from volworker.manager.operation import Command, Operation
from volworker.manager.queries import Query
from volworker.manager.request import Request
from volworker.manager.runtime import Runtime
from volworker.manager.takeover import Watch
from volworker.ordering import Ordering, Ticket
from volworker.state import operations

#: How long an operation of a cluster waits between two looks at the journal
#: for earlier operations on its volumes: from the first to the longest.
ORDER_POLL = (0.02, 0.5)

__all__ = ["Manager"]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Refused:
    """A cast the RPC layer refused before it could be journaled."""

    method: str
    args: dict[str, Any]
    error: exception.VolworkerError
    context: RequestContext


_STOP = object()

#: What journaling a request gave: its entry, a member to hand it to, or
#: None for a duplicate.
Journaled = transitions.Accepted | transitions.Elsewhere | None


class Manager:
    """Runs one backend's operations; lives on the event loop."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        locks: Coordination,
        max_concurrent: int,
        journal_retention: datetime.timedelta = datetime.timedelta(days=7),
        member: str | None = None,
        watch: Watch | None = None,
        forward: Callable[[str, Request], Any] | None = None,
        intake_limit: int | None = None,
    ) -> None:
        self.runtime = runtime
        self.locks = locks
        #: ``<host>@<backend>`` in a cluster, whose members share the journal
        self.member = member
        self.watch = watch
        #: in a cluster: hand a call to the member (owner) that must do it
        self.forward = forward
        self.ordering = Ordering(max_concurrent)
        #: accepted commands not yet finished, for the RPC intake to respect
        self.backlog = Backlog(default_limit(intake_limit, max_concurrent))
        self.journal_retention = journal_retention
        self._loop = asyncio.get_running_loop()
        self._intake: asyncio.Queue[Any] = asyncio.Queue()
        #: handed over by other threads, for the loop to move to the intake
        self._handed: collections.deque[Any] = collections.deque()
        self._hand_over_due = False
        self._intake_task: asyncio.Task[None] | None = None
        self._housekeeping: asyncio.Future[None] = self._loop.create_future()
        self._watching: asyncio.Future[None] = self._loop.create_future()
        self._waiting: set[asyncio.Task[None]] = set()
        self._running: set[asyncio.Task[None]] = set()
        #: journal seqs of the operations in line here (a cluster's order)
        self._in_line: set[int] = set()

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
                    shared=self.member is not None,
                ),
                loop=self._loop,
            )
        self._hand((request, journaled))

    def reject(
        self,
        method: str,
        args: dict[str, Any],
        error: exception.VolworkerError,
        context: RequestContext,
    ) -> None:
        """Record and announce a cast refused before it was journaled."""
        self._hand(_Refused(method, args, error, context))

    def _hand(self, item: Any) -> None:
        """Queue ``item`` for the intake, waking the loop only when no
        wake-up is due yet: each wake-up is a write to the loop's socket, and
        under load many requests arrive before the loop looks (and the
        store's or the driver pool's outcomes may have woken it already:
        :func:`handback.soon`)."""
        self._handed.append(item)
        if not self._hand_over_due:
            self._hand_over_due = True
            handback.soon(self._loop, self._take_handed)

    def _take_handed(self) -> None:
        # The flag first: an item handed while this drains is drained
        # here, or wakes the loop again; none is left behind.
        self._hand_over_due = False
        while self._handed:
            self._intake.put_nowait(self._handed.popleft())

    # -- intake -----------------------------------------------------------

    def start(self) -> None:
        self._intake_task = self._loop.create_task(self._intake_loop())
        self._housekeeping = self._loop.create_task(
            recovery.purge_journal(self.runtime, self.journal_retention)
        )

    def watch_cluster(self) -> None:
        """Watch the other members, and take over the work of the dead."""
        if self.watch is not None:
            self._watching = self._loop.create_task(self._watch(self.watch))

    async def _watch(self, watch: Watch) -> None:
        while True:
            try:
                for owner in await watch.tick():
                    await self.take_over(owner)
            except exception.VolworkerError as exc:
                LOG.warning("Watching cluster %s: %s", watch.group, exc)
            except Exception:
                LOG.exception("Watching cluster %s failed", watch.group)
            await asyncio.sleep(watch.interval)

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
        journaled: asyncio.Future[Journaled] | None,
    ) -> None:
        action = ACTIONS.get(request.action)
        if isinstance(action, Command) and journaled is not None:
            ticket = None
            if self.member is None:
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
        ticket: Ticket | None,
        journaled: asyncio.Future[Journaled],
    ) -> None:
        try:
            accepted = await journaled
        except Exception as exc:
            if ticket is not None:
                ticket.release()
            refusal = refusals.journal_failed(request, exc)
            if refusal is not None and request.respond is None:
                await refusals.record_refused(
                    self.runtime, request.action, request.args, refusal, request.context
                )
            return
        except asyncio.CancelledError:
            if ticket is not None:
                ticket.release()
            raise
        request.acknowledge()
        if isinstance(accepted, transitions.Elsewhere):
            await self._forward(accepted.owner, request)
            return
        if accepted is None:
            if ticket is not None:
                ticket.release()
            LOG.info(
                "[%s] Ignored %s for %s: already received",
                request.context.request_id,
                request.action,
                request.args[command.kind]["id"],
            )
            return
        op = Operation(self.runtime, request, accepted.seq, command, accepted)
        if ticket is None:
            ticket = await self._in_journal_order(accepted.seq, accepted.volumes)
        await self._run(op, ticket)

    async def _forward(self, owner: str, request: Request) -> None:
        """Have ``owner`` do a call, and pass its answer on."""
        assert self.forward is not None and request.respond is not None
        LOG.info(
            "[%s] %s is for %s, which serves the attachment: handed over",
            request.context.request_id,
            request.action,
            owner,
        )
        try:
            result = await self.runtime.blocking(self.forward, owner, request)
        except Exception as exc:
            request.respond(None, exc)
        else:
            request.respond(result, None)

    async def _in_journal_order(self, seq: int, volumes: Iterable[str]) -> Ticket:
        """A place in line for ``volumes`` once every earlier unfinished
        operation on them is finished or in line here."""
        volumes = frozenset(volumes)
        delay, longest = ORDER_POLL
        while True:
            earlier = await self.runtime.db(
                functools.partial(
                    operations.earlier_unfinished,
                    service=self.runtime.service,
                    seq=seq,
                    volumes=volumes,
                )
            )
            if earlier <= self._in_line:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)
        self._in_line.add(seq)
        return self.ordering.enqueue(volumes)

    async def _run(self, op: Operation, ticket: Ticket, *, undo: bool = False) -> None:
        handler = op.command.undo if undo and op.command.undo else op.command.run
        respond = op.request.respond
        try:
            result = await self._in_turn(ticket, op.request_id, lambda: handler(op))
        except asyncio.CancelledError:
            raise  # left in the journal; done after the next start
        except operations.TakenOver as exc:
            LOG.warning("[%s] Left %s: %s", op.request_id, op.request.action, exc)
            if respond:
                respond(None, exception.VolumeBackendAPIException(data=str(exc)))
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
        finally:
            self._in_line.discard(op.seq)

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
        """Queue what this worker's earlier incarnations left unfinished, in
        journal order. Call before consuming: recovered work goes ahead of
        new requests. Returns how many operations were recovered."""
        resumed = await recovery.unfinished(self.runtime, self.member)
        await self.resume(resumed)
        return len(resumed)

    async def resume(self, resumed: Iterable[recovery.Resumed]) -> None:
        """Queue re-owned operations (from a restart or a takeover) in
        journal order: redone, or undone."""
        for item in resumed:
            self.runtime.metrics.recovered(item.fate.name.lower())
            op = Operation(self.runtime, item.request, item.seq, item.command)
            undo = item.fate is recovery.Fate.UNDO
            keys = item.volumes or await volumes_touched(self.runtime, item.request)
            if self.member is None:
                ticket = self.ordering.enqueue(keys)
                self._spawn(self._run(op, ticket, undo=undo), self._waiting)
            else:
                self._spawn(self._resume_in_order(op, keys, undo), self._waiting)

    async def _resume_in_order(
        self, op: Operation, keys: Iterable[str], undo: bool
    ) -> None:
        ticket = await self._in_journal_order(op.seq, keys)
        await self._run(op, ticket, undo=undo)

    async def take_over(self, owner: str) -> None:
        """Take over what a dead member ``owner`` left: its unfinished
        operations (redone or undone as after a restart, in journal order)
        and its attachments (``moved``). The driver fences the dead member
        first (``fence_member``); when it cannot, nothing is taken over."""
        driver = self.runtime.driver
        await self.runtime.call(f"take over {owner}", driver.fence_member, owner)
        resumed = await recovery.take_over(self.runtime, owner)
        await self.resume(resumed)
        moved_count = await moved.take_over_attachments(
            self.runtime, owner, self.submit
        )
        LOG.warning(
            "Took over %s: %d operation(s), %d attachment(s)",
            owner,
            len(resumed),
            moved_count,
        )

    def restore_exports(self) -> None:
        """Have the driver restore (and prune) every volume's exports, in the
        background: each volume's turn is queued like an operation's."""
        self._spawn(self._restore_exports(), self._waiting)

    async def _restore_exports(self) -> None:
        ids = await recovery.exportable(self.runtime, self.member)
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
        self._watching.cancel()
        self._take_handed()  # what came before the stop goes before it
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
