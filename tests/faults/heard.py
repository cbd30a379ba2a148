"""What an outside listener heard: the end of every cast, announced once.

The listener binds to the worker's notifications as any consumer would (a
private queue on the ``openstack`` exchange) before the load starts. A
finished operation announces its end once, ``.end`` or ``.error`` (event
names from the manager's table of actions); a redo after a kill announces
its ``.start`` again, never a second end. From what was heard:

- duplicated: a cast whose end was announced more than once;
- mismatched: a cast announced otherwise than the journal finished it
  (``.end`` for a failure, ``.error`` for a success), or one the journal
  finished after the worker's last start that was never announced.
  Notifications still queued in a killed worker die with it, so only those
  of the last run are due.

Failures themselves are counted from the journal (``audit.account``), once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable
from typing import Any

from tests.faults.audit import FINISHED, Findings
from tests.faults.journal import utc
from tests.faults.load import Op
from volworker.manager.actions import commands
from volworker.testing.listen import Notifications

__all__ = ["audit_notifications"]

#: How long announcements may trail the journal.
GRACE = 15.0
#: A finished journal state -> how its end is announced.
_ANNOUNCED = {"done": ".end", "failed": ".error", "rolled_back": ".error"}


def _ends(events: Notifications, wanted: dict[str, Op]) -> dict[str, list[str]]:
    """Request id -> the end events heard for it."""
    found: dict[str, list[str]] = {}
    for message in events.events():
        request_id = message.get("_context_request_id")
        op = wanted.get(str(request_id))
        if op is None:
            continue
        spec = commands()[op.method]
        event = str(message["event_type"])
        if event in (f"{spec.kind}.{spec.event}.{end}" for end in ("end", "error")):
            found.setdefault(op.request_id, []).append(event)
    return found


def audit_notifications(
    events: Notifications,
    casts: Iterable[Op],
    rows: Iterable[dict[str, Any]],
    since: dt.datetime,
) -> Findings:
    """``rows``: the journal's operations; ``since``: the last start."""
    wanted = {op.request_id: op for op in casts}
    states = {str(r["request_id"]): r["state"] for r in rows}
    due = {
        str(r["request_id"])
        for r in rows
        if r["request_id"] in wanted
        and r["state"] in FINISHED
        and (utc(r["finished_at"]) or since) >= since
    }
    with contextlib.suppress(AssertionError):  # what is missing is reported
        events.wait_for(lambda _: due <= set(_ends(events, wanted)), GRACE)
    heard = _ends(events, wanted)
    findings = Findings()
    for request_id, ends in sorted(heard.items()):
        op = wanted[request_id]
        if len(ends) > 1:
            findings.duplicated.append(f"{op.method} {request_id} ended {ends}")
        state = states.get(request_id)
        want = _ANNOUNCED.get(str(state))
        if want and not ends[-1].endswith(want):
            findings.mismatched.append(
                f"{op.method} {request_id}: {state} in the journal, announced {ends}"
            )
    findings.mismatched.extend(
        f"{wanted[rid].method} {rid}: done since the last start, never announced"
        for rid in sorted(due - heard.keys())
    )
    return findings
