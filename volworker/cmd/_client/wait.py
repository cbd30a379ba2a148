"""``--wait``: poll a record until the worker has finished with it.

A cast has no reply; its outcome shows in the record. The worker leaves a
record untouched when it refuses a request outright (wrong status, bad
argument), so each command says what "finished" looks like for it, and a
wait that sees no change ends at its timeout with a hint to look at the
worker's log and notifications.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from volworker.cmd._client.arguments import seconds_arg
from volworker.cmd._client.errors import EXIT_FAILED, EXIT_UNREACHED, ClientError
from volworker.cmd._client.session import Session

__all__ = [
    "DEFAULT_TIMEOUT",
    "Record",
    "add_options",
    "changed",
    "failed",
    "finish",
    "gone",
    "outcome",
    "settled",
    "until",
]

DEFAULT_TIMEOUT = 300.0
TRANSITIONAL = frozenset({"creating", "deleting", "extending", "reverting", "updating"})
FIRST_INTERVAL = 0.1
MAX_INTERVAL = 1.0
#: Seconds without any change before a note that the request may be refused.
STALL_NOTICE = 10.0

Record = dict[str, Any] | None


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        action="store_true",
        help="wait until the worker has finished, then print the record",
    )
    parser.add_argument(
        "--wait-timeout",
        type=seconds_arg,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up waiting after this long (default {DEFAULT_TIMEOUT:g})",
    )


def failed(record: Record) -> bool:
    return record is not None and str(record["status"]).startswith("error")


def settled(record: Record) -> bool:
    """The record exists and no operation is under way on it."""
    return record is not None and record["status"] not in TRANSITIONAL


def _updated(record: Record, before: dict[str, Any]) -> bool:
    return record is not None and record["updated_at"] != before["updated_at"]


def changed(before: dict[str, Any]) -> Callable[[Record], bool]:
    """Settled again (or failed) since ``before``: the operation is over.

    An object may be in an error status already before the request;
    only an update since then says anything about this request.
    """

    def done(record: Record) -> bool:
        return (settled(record) or failed(record)) and _updated(record, before)

    return done


def gone(before: dict[str, Any]) -> Callable[[Record], bool]:
    """Deleted (the worker no longer knows it), or failed to be since
    ``before``."""

    def done(record: Record) -> bool:
        return record is None or (failed(record) and _updated(record, before))

    return done


def _refused_hint(what: str) -> str:
    return (
        f"{what}: the record has not changed since the request; the worker "
        "may have refused it (see its log, or the .error notification)"
    )


def _timed_out(what: str, timeout: float, first: Record, last: Record) -> str:
    if last is not None and last == first and settled(last):
        return f"timed out after {timeout:g}s waiting for " + _refused_hint(what)
    state = "it does not exist" if last is None else f"it is {last['status']}"
    return f"timed out after {timeout:g}s waiting for {what} ({state})"


def until(
    fetch: Callable[[], Record],
    done: Callable[[Record], bool],
    *,
    what: str,
    timeout: float,
) -> Record:
    """Poll ``fetch`` until ``done``; ClientError (exit 2) at the timeout.

    A record that stays settled and unchanged for STALL_NOTICE seconds gets
    one note on stderr: the request may have been refused (or be queued).
    """
    start = time.monotonic()
    deadline = start + timeout
    interval = FIRST_INTERVAL
    first = record = fetch()
    noticed = False
    while not done(record):
        now = time.monotonic()
        if now >= deadline:
            raise ClientError(_timed_out(what, timeout, first, record), EXIT_UNREACHED)
        stalled = record is not None and record == first and settled(record)
        if stalled and not noticed and now - start >= STALL_NOTICE:
            print(f"note: {_refused_hint(what)}; still waiting", file=sys.stderr)
            noticed = True
        time.sleep(min(interval, deadline - now))
        interval = min(interval * 2, MAX_INTERVAL)
        record = fetch()
    return record


def finish(session: Session, kind: str, object_id: str, record: Record) -> int:
    """Print the final record; exit code 1, with its error, if it failed."""
    session.out.record(record or {"id": object_id, "status": "deleted"})
    if failed(record):
        assert record is not None
        raise ClientError(
            f"{kind} {object_id} is {record['status']}: "
            f"{record.get('error') or 'no error message'}",
            EXIT_FAILED,
        )
    return 0


def outcome(
    session: Session,
    args: argparse.Namespace,
    kind: str,
    object_id: str,
    done: Callable[[Record], bool],
    goal: str,
) -> int:
    """After a cast: print the id, or with --wait the final record.

    ``goal`` completes "waiting for <kind> <id> ...", e.g. "to be created".
    """
    if not args.wait:
        session.out.value("id", object_id)
        return 0
    record = until(
        lambda: session.find(kind, object_id),
        done,
        what=f"{kind} {object_id} {goal}",
        timeout=args.wait_timeout,
    )
    return finish(session, kind, object_id, record)
