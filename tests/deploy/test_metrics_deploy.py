"""Metrics as deployed: the quick start serves /metrics and /healthz on
127.0.0.1:9669, the systemd unit reloads with SIGHUP, and the sample scrape
job points where the quick start serves."""

from __future__ import annotations

import pathlib
import subprocess
import time
import uuid

import yaml

from tests.conftest import require_service
from tests.deploy.conftest import ROOT
from tests.deploy.options import read_config
from tests.deploy.units import Unit, UnitProcess, venv_bin
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.metrics import health, scrape
from volworker.testing.worker import RABBIT_URL

QUICKSTART = ROOT / "etc" / "volworker" / "volworker.conf"
QUICKSTART_URL = "http://127.0.0.1:9669"
#: The README's scrape commands, run as they stand there.
README_SCRAPES = [
    line.strip()
    for line in (ROOT / "README.md").read_text().splitlines()
    if line.strip().startswith(f"curl -s {QUICKSTART_URL}/")
]


def _create_one(server: str, topic: str) -> None:
    api = VolumeAPI.from_url(RABBIT_URL, topic=topic, timeout=30)
    try:
        volume_id = str(uuid.uuid4())
        api.create_volume({"id": volume_id, "size": 1, "host": server})
        deadline = time.monotonic() + 30
        while api.get_volume(server, volume_id)["status"] == "creating":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        api.close()


def test_quickstart_serves_metrics_on_this_host_only() -> None:
    assert read_config(QUICKSTART).get("metrics", "listen") == "127.0.0.1:9669"
    job = yaml.safe_load((ROOT / "etc" / "prometheus" / "prometheus.yml").read_text())
    targets = job["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["127.0.0.1:9669"]


def test_quickstart_answers_scrapes_and_health(tmp_path: pathlib.Path) -> None:
    require_service("rabbitmq", 5672)
    proc = UnitProcess(tmp_path, {}, name="quickstart")
    env = {
        "OS_DEFAULT__STATE_PATH": str(tmp_path / "state"),
        "OS_DEFAULT__HOST": proc.host,
        "OS_DEFAULT__VOLUME_TOPIC": proc.topic,
    }
    argv = [venv_bin("volworker"), "--config-file", str(QUICKSTART)]
    try:
        proc.launch(argv, env, cwd=tmp_path).wait_ready(60)
        assert f"Serving metrics on {QUICKSTART_URL}/metrics" in proc.log()
        assert health(QUICKSTART_URL) == (
            200,
            {
                "status": "ok",
                "phase": "serving",
                "backends": {"file": "ready"},
                "problems": [],
            },
        )
        found = scrape(QUICKSTART_URL)
        assert found.value("volworker_backend_ready", backend="file") == 1
        assert found.has("volworker_pool_free_capacity_bytes", pool="default")
        _create_one(proc.server("file"), proc.topic)
        assert len(README_SCRAPES) == 2
        shown = [
            subprocess.run(
                ["bash", "-euo", "pipefail", "-c", command],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
            for command in README_SCRAPES
        ]
        assert shown[0].startswith("volworker_operations_total{")
        assert 'outcome="done"} 1.0' in shown[0]
        assert '"status": "ok"' in shown[1]
        assert proc.stop() == 0
    finally:
        proc.close()


def test_systemctl_reload_sends_sighup() -> None:
    unit = Unit(ROOT / "etc" / "systemd" / "volworker@.service")
    assert unit.get("Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
