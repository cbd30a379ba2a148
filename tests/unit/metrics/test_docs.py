"""docs/metrics.md lists exactly the metrics the worker exports."""

from __future__ import annotations

import pathlib
import re

from prometheus_client import generate_latest

from volworker.metrics import BackendMetrics, live
from volworker.metrics.families import REGISTRY

DOC = pathlib.Path(__file__).resolve().parents[3] / "docs" / "metrics.md"


def test_the_metrics_page_names_every_metric_and_no_other() -> None:
    BackendMetrics("docs")  # children, so that every family shows
    exposition = generate_latest(REGISTRY).decode()
    exported = set(re.findall(r"^# TYPE (volworker_\w+) ", exposition, re.M))
    exported |= {family.name for family in live.families().values()}
    documented = set(re.findall(r"^\| `(volworker_\w+)`", DOC.read_text(), re.M))
    assert sorted(exported - documented) == []
    assert sorted(documented - exported) == []
