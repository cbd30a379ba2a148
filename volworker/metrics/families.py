"""Every metric the worker counts as things happen: names, help and labels.

One table: the recorder (:mod:`.recorder`) counts into these, the dashboard
and alert rules in ``etc/`` query them, and a test checks that each name a
query uses is one a live worker exports. The figures read only when
Prometheus scrapes (backlog, pools, readiness) are in :mod:`.live`.

Every family is labelled by ``backend`` (a section of the configuration);
the other labels take values from the code (actions, driver methods, the
contract's error names), never from a request, so their number is bounded.
"""

from __future__ import annotations

import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

__all__ = [
    "BACKEND_INFO",
    "CAPABILITY_REPORTS",
    "CAPABILITY_ROUNDS_FAILED",
    "DRIVER_CALL_SECONDS",
    "INTAKE_MESSAGES",
    "INTAKE_STALLED_SECONDS",
    "INTAKE_STALLS",
    "OPERATIONS",
    "OPERATION_SECONDS",
    "RECOVERED",
    "REGISTRY",
    "RPC_CALLS",
    "RPC_REFUSED_CASTS",
    "SETUP_ATTEMPTS",
]

# The `_created` series double what a scrape carries and no query here
# needs them; the switch is read when a family is made, so it comes first.
prometheus_client.disable_created_metrics()

#: The worker's own registry, with the process and Python collectors the
#: dashboard shows (CPU, memory, file descriptors, garbage collection).
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

#: Seconds an operation takes: fractions of a second on a fast backend, up
#: to half an hour for a full copy to an image.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
DRIVER_BUCKETS = (0.001, 0.0025, 0.005, *BUCKETS)

OPERATIONS = Counter(
    "volworker_operations",
    "Journaled operations finished, by action and outcome (done, failed, "
    "refused: not done and nothing touched, rolled_back: undone after a restart).",
    ["backend", "action", "outcome"],
    registry=REGISTRY,
)
OPERATION_SECONDS = Histogram(
    "volworker_operation_duration_seconds",
    "Seconds from an operation's acceptance (journaled) to its end, waiting "
    "for its turn included.",
    ["backend", "action"],
    buckets=BUCKETS,
    registry=REGISTRY,
)
DRIVER_CALL_SECONDS = Histogram(
    "volworker_driver_call_duration_seconds",
    "Seconds a driver method took (successful or not).",
    ["backend", "method"],
    buckets=DRIVER_BUCKETS,
    registry=REGISTRY,
)
INTAKE_MESSAGES = Counter(
    "volworker_intake_messages",
    "Messages (casts and calls) taken from the broker.",
    ["backend"],
    registry=REGISTRY,
)
INTAKE_STALLS = Counter(
    "volworker_intake_stalls",
    "Times the bounded intake stopped taking casts because the backlog was full.",
    ["backend"],
    registry=REGISTRY,
)
INTAKE_STALLED_SECONDS = Counter(
    "volworker_intake_stalled_seconds",
    "Seconds the bounded intake spent holding casts back (stalls that ended).",
    ["backend"],
    registry=REGISTRY,
)
RPC_CALLS = Counter(
    "volworker_rpc_calls",
    "Calls answered, by method and the contract's error name (none: a result).",
    ["backend", "method", "error"],
    registry=REGISTRY,
)
RPC_REFUSED_CASTS = Counter(
    "volworker_rpc_refused_casts",
    "Casts refused on arrival (malformed, unknown method or version), by "
    "method and error name.",
    ["backend", "method", "error"],
    registry=REGISTRY,
)
CAPABILITY_REPORTS = Counter(
    "volworker_capability_reports",
    "Capability reports the broker took for the scheduler topic's fanout.",
    ["backend"],
    registry=REGISTRY,
)
CAPABILITY_ROUNDS_FAILED = Counter(
    "volworker_capability_rounds_failed",
    "Polling rounds whose get_volume_stats failed, hung past stats_timeout "
    "or returned an invalid report: nothing was published.",
    ["backend"],
    registry=REGISTRY,
)
SETUP_ATTEMPTS = Counter(
    "volworker_backend_setup_attempts",
    "Attempts at the driver's do_setup and check_for_setup_error.",
    ["backend"],
    registry=REGISTRY,
)
RECOVERED = Counter(
    "volworker_recovered_operations",
    "Operations a start or a takeover found unfinished in the journal, by fate (redo: "
    "done again, undo: rolled back).",
    ["backend", "fate"],
    registry=REGISTRY,
)
BACKEND_INFO = Info(
    "volworker_backend",
    "The driver serving each backend.",
    ["backend"],
    registry=REGISTRY,
)
