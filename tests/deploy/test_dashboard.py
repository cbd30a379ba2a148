"""The Grafana dashboard and the alert rules in etc/ query only what a live
worker exports, their PromQL runs in a real Prometheus scraping that
worker, and each alert fires when it should (promtool's rule tests)."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml

from tests.conftest import require_service
from tests.deploy import dashboard_svg
from tests.deploy.conftest import ROOT, require_tool
from volworker import exception
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.listen import Reports
from volworker.testing.metrics import metrics_url, scrape
from volworker.testing.worker import RABBIT_URL, Worker

DASHBOARD = ROOT / "etc" / "grafana" / "volworker-dashboard.json"
ALERTS = ROOT / "etc" / "prometheus" / "volworker-alerts.yml"
ALERT_TESTS = ROOT / "tests" / "deploy" / "volworker-alerts.test.yml"

#: PromQL words that look like metric names.
KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "group_left",
    "group_right",
    "inf",
    "nan",
}
#: Grafana's variables, as a query would have them filled in.
VARIABLES = {"$__rate_interval": "10s", "$instance": ".*", "$backend": ".*"}


def _metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr
    )
    found = re.findall(r"(?<![\w$.:])([a-zA-Z_:][\w:]*)\b(?!\s*\()", expr)
    return {name for name in found if name.lower() not in KEYWORDS}


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in _panels(dashboard)
        for target in panel.get("targets", [])
    ]


def variable_metrics() -> set[str]:
    """The metrics the dashboard's variables list label values of."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        match.group(1)
        for variable in dashboard["templating"]["list"]
        if variable["type"] == "query"
        for match in [re.match(r"label_values\((\w+)", variable["definition"])]
        if match
    }


def alert_queries() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_names_are_found_in_promql() -> None:
    assert _metric_names(
        'histogram_quantile(0.99, sum by (le, action) (rate(a_bucket{x=~"$y"}[5m])))'
        " / on (b) group_left c_total > 1e3 and d offset 5m"
    ) == {"a_bucket", "c_total", "d"}


def _promtool(*args: str) -> str:
    promtool = require_tool("promtool", "prometheus")
    done = subprocess.run(
        [promtool, *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_alert_rules_fire_when_they_should() -> None:
    assert "SUCCESS: 4 rules found" in _promtool("check", "rules", str(ALERTS))
    _promtool("test", "rules", str(ALERT_TESTS))
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    for name in {rule["alert"] for group in groups for rule in group["rules"]}:
        assert f"alertname: {name}" in ALERT_TESTS.read_text(), f"{name} untested"


@dataclasses.dataclass
class Live:
    url: str
    worker: Worker
    api: VolumeAPI

    def load(self, bursts: int = 3, creates: int = 150) -> None:
        """Bursts of creates that make a backlog, a few failing extends
        (2%: under the error-rate alert) and calls, a few seconds apart."""
        server = self.worker.server("b1")
        for _ in range(bursts):
            volumes = [
                {"id": str(uuid.uuid4()), "size": 1, "host": server}
                for _ in range(creates)
            ]
            for volume in volumes:
                self.api.create_volume(volume)
            for volume in volumes[:3]:
                self.api.extend_volume(volume, 2)
            for volume in volumes[:20]:
                self.api.get_volume(server, volume["id"])
            time.sleep(5)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A worker that has done a bit of everything: created, answered,
    refused, attached, reported to a scheduler."""
    require_service("rabbitmq", 5672)
    scheduler = f"vwsched-{uuid.uuid4().hex[:10]}"
    reports = Reports(scheduler)
    worker = Worker(
        tmp_path_factory.mktemp("dashboard"),
        {
            "b1": {
                "volume_driver": "fake",
                "fake_method_latency": "create_volume:0.05",
                "fake_failures": "extend_volume:VolumeBackendAPIException",
            }
        },
        defaults={
            "scheduler_topic": scheduler,
            "backend_stats_polling_interval": 2,
            "max_concurrent_operations": 4,
        },
        extra={"metrics": {"listen": "127.0.0.1:0"}},
    )
    api = VolumeAPI.from_url(RABBIT_URL, topic=worker.topic, timeout=30)
    try:
        worker.start().wait_ready()
        server = worker.server("b1")
        volume = {"id": str(uuid.uuid4()), "size": 1, "host": server}
        api.create_volume(volume)
        api.create_volume({"id": "not-a-uuid", "size": 1, "host": server})
        deadline = time.monotonic() + 30
        while api.get_volume(server, volume["id"])["status"] != "available":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(exception.VolumeNotFound):
            api.get_volume(server, str(uuid.uuid4()))
        api.initialize_connection(volume, {"host": "node-1"})
        reports.wait_report()
        yield Live(metrics_url(worker), worker, api)
    finally:
        api.close()
        reports.close()
        worker.close()


def test_every_metric_queried_is_exported(live: Live) -> None:
    exported = scrape(live.url).names()
    queried = set(variable_metrics())
    for expr in dashboard_queries() + alert_queries():
        queried |= _metric_names(expr)
    assert {"volworker_operations_total", "volworker_backend_ready"} <= queried
    assert sorted(queried - exported) == []


def _filled(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """A real Prometheus scraping one worker every second."""

    def __init__(self, tmp: pathlib.Path, target: str) -> None:
        config = tmp / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(ALERTS)],
                    "scrape_configs": [
                        {
                            "job_name": "volworker",
                            "static_configs": [{"targets": [target]}],
                        }
                    ],
                }
            )
        )
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log = tmp / "prometheus.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    require_tool("prometheus", "prometheus"),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp / 'data'}",
                    f"--web.listen-address={self.url.removeprefix('http://')}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(
            f"{self.url}/api/v1/{path}?{query}", timeout=10
        ) as r:
            answer = json.loads(r.read())
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=_filled(expr))["result"])

    def query_range(
        self, expr: str, span: tuple[float, float]
    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        data = self.api(
            "query_range",
            query=_filled(expr),
            start=str(span[0]),
            end=str(span[1]),
            step="1s",
        )
        return [
            (found["metric"], [(float(t), float(v)) for t, v in found["values"]])
            for found in data["result"]
        ]

    def wait_scrapes(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                found = self.query(f"count_over_time(up[1m]) >= {count}")
                if found and found[0]["value"][1] != "0":
                    return
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(self.log.read_text()[-3000:])
            time.sleep(0.5)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def test_queries_run_in_prometheus_against_the_worker(
    tmp_path: pathlib.Path, live: Live
) -> None:
    prometheus = Prometheus(tmp_path, live.url.removeprefix("http://"))
    try:
        prometheus.wait_scrapes(4)
        began = time.time()
        live.load()
        span = (began - 5, time.time())
        for expr in dashboard_queries() + alert_queries():
            prometheus.query(expr)  # parses and runs
        ready = prometheus.query('volworker_backend_ready{backend="b1"}')
        assert ready[0]["value"][1] == "1"
        panel = "rate(volworker_operations_total"
        done = prometheus.query(next(q for q in dashboard_queries() if panel in q))
        assert {r["metric"]["action"] for r in done} >= {"create_volume"}
        for metric in variable_metrics():
            values = prometheus.api("label/backend/values", **{"match[]": metric})
            assert values == ["b1"]
        rules = prometheus.api("rules")["groups"][0]["rules"]
        assert {r["health"] for r in rules} == {"ok"}, rules
        assert {r["state"] for r in rules} == {"inactive"}  # nothing to alert
        _draw(tmp_path, lambda expr: prometheus.query_range(expr, span), span)
    finally:
        prometheus.close()


def _draw(tmp_path: pathlib.Path, query_range: Any, span: tuple[float, float]) -> None:
    """The dashboard as the README shows it; VOLWORKER_DASHBOARD_SVG=path
    keeps a copy there (docs/dashboard.svg)."""
    dashboard = json.loads(DASHBOARD.read_text())
    svg = dashboard_svg.render(dashboard, query_range, span)
    drawn = ElementTree.fromstring(svg)
    groups = drawn.findall("{http://www.w3.org/2000/svg}g")
    assert len(groups) == len([p for p in dashboard["panels"] if p["type"] != "row"])
    lines = drawn.findall(".//{http://www.w3.org/2000/svg}polyline")
    assert len(lines) >= 10  # most panels have data
    (tmp_path / "dashboard.svg").write_text(svg)
    keep = os.environ.get("VOLWORKER_DASHBOARD_SVG")
    if keep:
        pathlib.Path(keep).write_text(svg)
