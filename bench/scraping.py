"""A Prometheus stand-in for figure 1's metrics-on variant: it scrapes the
worker's ``/metrics`` once a second while it drains, more often than any
real scrape job (15 s is usual), so what it costs shows."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from volworker.testing.metrics import metrics_url, scrape
from volworker.testing.worker import Worker

__all__ = ["SCRAPE_INTERVAL", "scraped"]

SCRAPE_INTERVAL = 1.0


def scraped(worker: Worker) -> Any:
    """A drain round's ``watch``: scrape ``worker`` while it drains."""

    @contextlib.contextmanager
    def watch(pid: int) -> Iterator[None]:
        url = metrics_url(worker)
        stop = threading.Event()
        scrapes: list[int] = []

        def run() -> None:
            while not stop.wait(SCRAPE_INTERVAL):
                scrape(url)
                scrapes.append(1)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(10)
            if not scrapes:
                raise RuntimeError(f"{url}/metrics was never scraped")

    return watch
