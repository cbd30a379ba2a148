"""Reading a worker's ``/metrics`` and ``/healthz`` as Prometheus and an
orchestrator would: over HTTP, parsed with prometheus-client's own parser."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from volworker.testing.worker import Worker

__all__ = ["Scrape", "health", "metrics_url", "scrape"]

_SERVING = re.compile(r"Serving metrics on (http://\S+)/metrics")


def metrics_url(worker: Worker, timeout: float = 30) -> str:
    """``http://host:port`` the worker's latest start serves on (from its log)."""
    deadline = time.monotonic() + timeout
    while not (found := _SERVING.findall(worker.log())):
        if time.monotonic() > deadline or worker.exited():
            raise AssertionError(f"no metrics endpoint in the log:\n{worker.log()}")
        time.sleep(0.05)
    return str(found[-1])


class Scrape:
    """One scrape: every sample by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: list[tuple[str, dict[str, str], float]] = [
            (sample.name, dict(sample.labels), float(sample.value))
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def names(self) -> set[str]:
        return {name for name, _, _ in self.samples}

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels``
        (0 when there is none)."""
        return sum(
            value
            for found, have, value in self.samples
            if found == name and all(have.get(k) == v for k, v in labels.items())
        )

    def has(self, name: str, **labels: str) -> bool:
        return any(
            found == name and all(have.get(k) == v for k, v in labels.items())
            for found, have, _ in self.samples
        )


def scrape(url: str, timeout: float = 10) -> Scrape:
    with urllib.request.urlopen(f"{url}/metrics", timeout=timeout) as response:
        return Scrape(response.read().decode())


def health(url: str, timeout: float = 10) -> tuple[int, dict[str, Any]]:
    """``/healthz``'s status code and body."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
