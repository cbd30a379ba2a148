"""One journaled operation while it runs: its steps and what it may use.

A handler (``volumes.py``, ``snapshots.py``, ``connections.py``) receives an
:class:`Operation` and calls ``begin`` (transitional status, ``.start``
notification), ``call`` for each driver step, and ``finish`` (final status,
``.end`` notification). If the handler raises, the manager calls ``fail``:
the object gets its error status and an ``.error`` notification goes out.
What a handler needs besides comes from ``op.runtime``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from volworker import exception
from volworker.manager import group_records, transitions
from volworker.manager.request import Request
from volworker.manager.runtime import Runtime
from volworker.objects import Group, GroupSnapshot, Snapshot
from volworker.state.models import utcnow

__all__ = [
    "REFUSALS",
    "TRANSITIONAL",
    "Command",
    "Handler",
    "Operation",
    "release_adopted",
]

LOG = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: Errors that mean "not done, nothing touched": the object keeps the
#: status it had (unless the operation was creating it).
REFUSALS = (
    exception.InvalidInput,
    exception.InvalidVolume,
    exception.VolumeIsBusy,
    exception.VolumeNotFound,
    exception.SnapshotNotFound,
    exception.NotSupported,
)


#: What the worker keeps of a driver's model update, unless told otherwise.
MODEL_FIELDS = ("provider_location", "provider_auth")

#: Statuses that only exist while an operation runs.
TRANSITIONAL = frozenset({"creating", "deleting", "extending", "reverting"})

Handler = Callable[["Operation"], Awaitable[Any]]


@dataclass(frozen=True)
class Command:
    """An action that changes a volume or snapshot: journaled, run in its
    volumes' turn, and finished or undone after a crash."""

    kind: str  # "volume" or "snapshot": what the action acts on
    event: str  # the notification's action: volume.<event>.start
    error_status: str | None  # status after a backend failure; None keeps it
    run: Handler
    #: undoes the operation when a restart interrupted it while running;
    #: without one, the operation is done again
    undo: Handler | None = None
    creates: bool = False  # the action creates the object it names
    reply: bool = False  # a call: the caller waits for the result


class Operation:
    """The running state of one journaled request."""

    def __init__(
        self,
        runtime: Runtime,
        request: Request,
        seq: int,
        command: Command,
        accepted: transitions.Accepted | None = None,
    ) -> None:
        self.runtime = runtime
        #: the backend's driver: ``await op.call(op.driver.create_volume, v)``
        self.driver = runtime.driver
        self.request = request
        self.seq = seq
        self.command = command
        self.accepted = accepted
        self.args = request.args
        self.context = request.context
        obj = self.args.get(command.kind) or {}
        self.resource_id: str = obj.get("id", "")
        #: the object's row (detached) as this operation last saw it
        self.row: Any = None
        #: when it began, if beginning wrote nothing to the journal
        self.unrecorded_start: Any = None
        self.prior_status: str | None = None
        self.started = time.monotonic()

    @property
    def request_id(self) -> str:
        return self.context.request_id

    async def db(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``work(session, *args, **kwargs)`` on the state store."""

        def item(session: Session) -> T:
            return work(session, *args, **kwargs)

        return await self.runtime.db(item)

    async def call(
        self, method: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Call a bound driver method on the worker pool (foreign errors
        become VolumeBackendAPIException)."""
        return await self.runtime.call(self.request_id, method, *args, **kwargs)

    async def load_volume(self, volume_id: str) -> tuple[dict[str, Any], Any]:
        return await self.db(transitions.load_volume, self.runtime.service, volume_id)

    async def load_snapshot(self, snapshot_id: str) -> tuple[dict[str, Any], Any]:
        return await self.db(
            transitions.load_snapshot, self.runtime.service, snapshot_id
        )

    async def load_group(self, group_id: str) -> tuple[dict[str, Any], Group]:
        return await self.db(group_records.load_group, self.runtime.service, group_id)

    async def load_group_snapshot(
        self, group_snapshot_id: str
    ) -> tuple[dict[str, Any], GroupSnapshot, list[Snapshot]]:
        return await self.db(
            group_records.load_group_snapshot, self.runtime.service, group_snapshot_id
        )

    def model_update(
        self, update: Any, allowed: tuple[str, ...] = MODEL_FIELDS
    ) -> dict[str, Any]:
        """The parts of a driver's model update the worker keeps."""
        if not update:
            return {}
        if not isinstance(update, dict):
            raise exception.VolumeBackendAPIException(
                data=f"driver returned {type(update).__name__} as a model update"
            )
        unknown = sorted(set(update) - set(allowed))
        if unknown:
            LOG.debug("[%s] Ignoring model update keys %s", self.request_id, unknown)
        return {k: v for k, v in update.items() if k in allowed}

    async def begin(self, status: str | None) -> Any:
        """Mark the operation running; set ``status``; announce ``.start``.

        Returns the driver object (Volume or Snapshot) of what it acts on.
        """
        fresh = self.accepted
        if (
            fresh is not None
            and fresh.row is not None
            and status == fresh.row.status
            and self.command.kind == "volume"
            and self.command.undo is None
        ):
            # A volume's create journaled its record moments ago and is
            # redone alike from "accepted" or "running"; nothing to write yet.
            # One rolled back instead must be marked running, and a snapshot
            # is of its volume as it is now, not as it was at acceptance.
            self.prior_status, self.row, obj = status, fresh.row, fresh.obj
            self.unrecorded_start = utcnow()
        else:
            self.prior_status, self.row, obj = await self.db(
                transitions.begin,
                self.runtime.service,
                self.runtime.owner,
                self.seq,
                self.command.kind,
                self.resource_id,
                status,
            )
        self._notify("start", self.row.to_dict())
        return obj

    async def _close(self, **kwargs: Any) -> dict[str, Any] | None:
        row = await self.db(
            transitions.finish,
            self.runtime.service,
            self.runtime.owner,
            self.seq,
            self.command.kind,
            self.resource_id,
            row=self.row,
            started_at=self.unrecorded_start,
            **kwargs,
        )
        if row is None:
            return None
        self.row = row
        return dict(row.to_dict())

    async def finish(
        self,
        *,
        delete: bool = False,
        also: Callable[[Session], None] | None = None,
        **fields: Any,
    ) -> dict[str, Any] | None:
        """Close the operation: the object's final fields (and whatever
        ``also`` writes, in the same transaction), then ``.end``."""
        record = await self._close(fields=fields, delete=delete, also=also)
        self.runtime.metrics.operation(self.request.action, "done", self.started)
        if record is not None:
            self._notify("end", record)
        LOG.info(
            "[%s] %s %s done in %.3fs",
            self.request_id,
            self.request.action,
            self.resource_id,
            time.monotonic() - self.started,
        )
        return record

    async def roll_back(self, reason: str, **fields: Any) -> None:
        """Close an operation a restart interrupted, undone: the object gets
        ``fields`` and an ``.error`` notification says what happened."""
        record = await self._close(fields=fields, state="rolled_back", error=reason)
        self.runtime.metrics.operation(self.request.action, "rolled_back", self.started)
        payload = dict(record or {"id": self.resource_id})
        payload["error"] = reason
        self._notify("error", payload)
        LOG.warning(
            "[%s] %s %s rolled back: %s",
            self.request_id,
            self.request.action,
            self.resource_id,
            reason,
        )

    async def fail(self, error: BaseException) -> None:
        """Close the operation as failed and leave the object honest.

        The record and the notification say what a caller is told
        (``exception.for_caller``); the log has the whole error."""
        message = str(exception.for_caller(error)) or type(error).__name__
        refused = isinstance(error, REFUSALS)
        if self.command.creates:
            status: str | None = "error"
        elif self.prior_status is None:
            # Refused before it began: the object stays as it was found,
            # unless a crash left it mid-way and this redo failed at once.
            status = await self._found_status()
        elif refused:
            status = self.prior_status
        else:
            status = self.command.error_status or self.prior_status
        if status in TRANSITIONAL:
            # A redo after a crash starts from a transitional status; never
            # leave an object in one.
            status = self.command.error_status or "error"
        fields: dict[str, Any] = {}
        if status:
            fields = {"status": status, "error": message}
            if not status.startswith("error"):
                fields["error"] = None
        record = await self._close(fields=fields, state="failed", error=message)
        outcome = "refused" if refused else "failed"
        self.runtime.metrics.operation(self.request.action, outcome, self.started)
        payload = dict(record or {"id": self.resource_id})
        payload["error"] = message
        self._notify("error", payload)
        log = LOG.warning if refused else LOG.error
        log(
            "[%s] %s %s failed after %.3fs: %s",
            self.request_id,
            self.request.action,
            self.resource_id,
            time.monotonic() - self.started,
            str(error) or type(error).__name__,
        )

    async def _found_status(self) -> str | None:
        """The object's status if a crash left it transitional, else None."""
        try:
            self.row = await self.db(
                transitions.load_row,
                self.runtime.service,
                self.command.kind,
                self.resource_id,
            )
        except (exception.VolumeNotFound, exception.SnapshotNotFound):
            return None
        return str(self.row.status) if self.row.status in TRANSITIONAL else None

    def _notify(self, phase: str, payload: dict[str, Any]) -> None:
        self.runtime.notifications.emit(
            self.context, self.command.kind, self.command.event, phase, payload
        )


async def release_adopted(
    op: Operation, unmanage: Callable[[Any], None], what: str
) -> None:
    """Roll back a manage a restart interrupted: unmanage what it adopted.

    ``unmanage`` is the bound driver method (unmanage or unmanage_snapshot).
    """
    obj = await op.begin(None)
    try:
        await op.call(unmanage, obj)
    except exception.VolworkerError as exc:
        LOG.info("[%s] Nothing adopted to release: %s", op.request_id, exc)
    await op.roll_back(
        f"the worker restarted while managing the {what}; it was left "
        "unmanaged on the backend",
        status="error",
    )
