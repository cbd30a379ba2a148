"""The Grafana dashboard and the alert rules in etc/ query only what a live
worker exports, their PromQL runs in a real Prometheus scraping that
worker, and each alert fires when it should (promtool's rule tests)."""

from __future__ import annotations

import json
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

import pytest
import yaml

from tests.conftest import require_service
from tests.deploy.conftest import ROOT, require_tool
from tests.functional.test_capabilities import Reports
from volworker import exception
from volworker.rpc.rpcapi import VolumeAPI
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
VARIABLES = {"$__rate_interval": "30s", "$instance": ".*", "$backend": ".*"}


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


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Worker]]:
    """A worker that has done a bit of everything: created, answered,
    refused, attached, reported to a scheduler."""
    require_service("rabbitmq", 5672)
    scheduler = f"vwsched-{uuid.uuid4().hex[:10]}"
    reports = Reports(scheduler)
    worker = Worker(
        tmp_path_factory.mktemp("dashboard"),
        {"b1": {"volume_driver": "fake"}},
        defaults={"scheduler_topic": scheduler, "backend_stats_polling_interval": 2},
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
        yield metrics_url(worker), worker
    finally:
        api.close()
        reports.close()
        worker.close()


def test_every_metric_queried_is_exported(live: tuple[str, Worker]) -> None:
    url, _ = live
    exported = scrape(url).names()
    queried = set(variable_metrics())
    for expr in dashboard_queries() + alert_queries():
        queried |= _metric_names(expr)
    assert {"volworker_operations_total", "volworker_backend_ready"} <= queried
    assert sorted(queried - exported) == []


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
        for name, value in VARIABLES.items():
            expr = expr.replace(name, value)
        return list(self.api("query", query=expr)["result"])

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
    tmp_path: pathlib.Path, live: tuple[str, Worker]
) -> None:
    url, _ = live
    prometheus = Prometheus(tmp_path, url.removeprefix("http://"))
    try:
        prometheus.wait_scrapes(4)
        for expr in dashboard_queries() + alert_queries():
            prometheus.query(expr)  # parses and runs
        assert (
            prometheus.query('volworker_backend_ready{backend="b1"}')[0]["value"][1]
            == "1"
        )
        panel = "rate(volworker_operations_total"
        done = prometheus.query(next(q for q in dashboard_queries() if panel in q))
        assert {r["metric"]["action"] for r in done} >= {"create_volume"}
        for metric in variable_metrics():
            values = prometheus.api("label/backend/values", **{"match[]": metric})
            assert values == ["b1"]
        rules = prometheus.api("rules")["groups"][0]["rules"]
        assert {r["health"] for r in rules} == {"ok"}, rules
        assert {r["state"] for r in rules} == {"inactive"}  # nothing to alert
    finally:
        prometheus.close()
