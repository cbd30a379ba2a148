"""The recorders count what they are told into the process's families,
with bounded labels; the recorder of metrics off counts nothing."""

from __future__ import annotations

import time
import uuid

from volworker.metrics import OFF, BackendMetrics, intake_held
from volworker.metrics.families import REGISTRY


def _backend() -> str:
    return f"b{uuid.uuid4().hex[:8]}"


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_operations_count_by_action_and_outcome_and_fill_the_histogram() -> None:
    backend = _backend()
    metrics = BackendMetrics(backend)
    started = time.monotonic() - 0.2
    metrics.operation("create_volume", "done", started)
    metrics.operation("create_volume", "done", started)
    metrics.operation("create_volume", "failed", started)
    ops = "volworker_operations_total"
    assert _value(ops, backend=backend, action="create_volume", outcome="done") == 2
    assert _value(ops, backend=backend, action="create_volume", outcome="failed") == 1
    histogram = "volworker_operation_duration_seconds"
    labels = {"backend": backend, "action": "create_volume"}
    assert _value(f"{histogram}_count", **labels) == 3
    assert _value(f"{histogram}_bucket", le="0.1", **labels) == 0
    assert _value(f"{histogram}_bucket", le="0.25", **labels) == 3
    assert _value(f"{histogram}_sum", **labels) >= 0.6


def test_call_and_refusal_labels_are_bounded_by_the_contract() -> None:
    backend = _backend()
    metrics = BackendMetrics(backend, methods={"get_volume"})
    metrics.rpc_call("get_volume", None)
    metrics.rpc_call("get_volume", KeyError("x"))
    metrics.rpc_call("a-method-someone-made-up", ValueError("x"))
    metrics.cast_refused("../etc/passwd", ValueError("x"))
    calls = "volworker_rpc_calls_total"
    assert _value(calls, backend=backend, method="get_volume", error="none") == 1
    assert _value(calls, backend=backend, method="get_volume", error="KeyError") == 1
    assert _value(calls, backend=backend, method="other", error="ValueError") == 1
    refused = "volworker_rpc_refused_casts_total"
    assert _value(refused, backend=backend, method="other", error="ValueError") == 1


def test_series_that_alerts_need_exist_before_the_first_event() -> None:
    backend = _backend()
    BackendMetrics(backend)
    for name in ("volworker_intake_stalls_total", "volworker_intake_messages_total"):
        assert REGISTRY.get_sample_value(name, {"backend": backend}) == 0


def test_a_report_remembers_when_its_figures_were_taken() -> None:
    metrics = BackendMetrics(_backend())
    assert metrics.report_taken is None
    metrics.report_sent("2026-11-22T10:00:00+00:00")
    assert metrics.report_taken == 1795341600.0


def test_intake_held_counts_stalls_and_their_seconds() -> None:
    backend = _backend()
    BackendMetrics(backend)
    server = f"host@{backend}"
    intake_held(server, False)
    intake_held(server, True)
    intake_held(server, True)  # still the same stall
    time.sleep(0.05)
    intake_held(server, False)
    intake_held(server, True)
    assert _value("volworker_intake_stalls_total", backend=backend) == 2
    assert _value("volworker_intake_stalled_seconds_total", backend=backend) >= 0.05


def _volworker_samples() -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, sample.labels, sample.value)
        for family in REGISTRY.collect()
        if family.name.startswith("volworker_")
        for sample in family.samples
    ]


def test_metrics_off_records_nothing() -> None:
    before = _volworker_samples()
    started = time.monotonic()
    OFF.operation("create_volume", "done", started)
    OFF.driver_call("create_volume", started)
    OFF.message_taken()
    OFF.rpc_call("get_volume", None)
    OFF.report_sent("2026-11-22T10:00:00+00:00")
    assert _volworker_samples() == before
    assert OFF.report_taken is None
