"""What a capability report costs, by number of pools: size and publish time.

For reports of 1, 100 and 1,000 pools (the fake driver with that many
``fake_pools``, two volumes recorded per pool), in one process against the
real RabbitMQ, each measured ``--repeats`` times:

- ``bytes``: the AMQP body a scheduler's fanout queue receives;
- ``cast``: one ``update_service_capabilities`` fanout cast, broker confirm
  included: what a sender thread spends per report;
- ``check``: a polling round's own work: the driver's ``get_volume_stats``,
  ``capability_report.check``, ``state.records.pool_allocations`` and
  ``capability_report.with_allocations``;
- ``request``: a :class:`~volworker.capabilities.Publisher` running as a
  backend's does, asked to publish (as by ``publish_service_capabilities``:
  the driver's last figures, fresh counts, no driver call), until the
  report is in the scheduler's queue.

The baseline, measured in the same run, is a report with an empty ``pools``
list; ratios are against its median (for ``check`` and ``request``, which
need a pool, against the 1-pool report). Prints a markdown table and JSON.

    .venv/bin/python bench/capabilities.py [--repeats 20] [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import kombu
import oslo_messaging
from oslo_config import cfg

from volworker import backend, capabilities, capability_report
from volworker.capabilities import Publisher
from volworker.driver import VolumeDriver, loader
from volworker.driver.config import register_backend
from volworker.senders import Senders
from volworker.state import Store, records

POOLS = (1, 100, 1000)
#: the local RabbitMQ, in the virtual host bench/run made for this run
RABBIT_URL = "rabbit://guest:guest@127.0.0.1:5672/" + os.environ.get(
    "VOLWORKER_TEST_VHOST", ""
)
HOST = "bench@fake"


class Fanout:
    """A scheduler's queue on the fanout: arrival times and body sizes."""

    def __init__(self, url: str, topic: str) -> None:
        self.sizes: list[int] = []
        self.arrived = threading.Condition()
        self._conn = kombu.Connection(url.replace("rabbit://", "amqp://", 1))
        exchange = kombu.Exchange(
            f"{topic}_fanout", type="fanout", durable=False, auto_delete=True
        )
        self._queue = kombu.Queue(
            f"bench-{uuid.uuid4().hex[:8]}", exchange, exclusive=True, auto_delete=True
        )
        self._stop = threading.Event()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)

    def _on_message(self, body: Any, message: kombu.Message) -> None:
        with self.arrived:
            self.sizes.append(len(message.body))
            self.arrived.notify_all()
        message.ack()

    def _run(self, ready: threading.Event) -> None:
        with self._conn.Consumer(self._queue, callbacks=[self._on_message]):
            ready.set()
            while not self._stop.is_set():
                try:
                    self._conn.drain_events(timeout=0.2)
                except TimeoutError:
                    continue

    def wait(self, count: int, timeout: float = 30) -> None:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.sizes) >= count, timeout):
                raise RuntimeError(f"only {len(self.sizes)} of {count} reports came")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._conn.release()


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "min": min(samples),
        "median": statistics.median(samples),
        "max": max(samples),
    }


def _timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def _driver(conf: cfg.ConfigOpts, pools: int, state_path: str) -> VolumeDriver:
    name = f"bench{pools}"
    register_backend(conf, name)
    conf.set_override("volume_driver", "fake", group=name)
    driver = loader.load_driver(conf, name, host="bench", state_path=state_path)
    conf.set_override("fake_pools", [f"pool{i:04d}" for i in range(pools)], name)
    return driver


def _record_volumes(store: Store, service: str, pools: list[str]) -> None:
    def add(session: Any) -> None:
        for pool in pools:
            for _ in range(2):
                records.insert(
                    session,
                    "volume",
                    id=str(uuid.uuid4()),
                    service=service,
                    size=10,
                    host=f"{service}#{pool}",
                    pool=pool,
                    status="available",
                )

    store.submit(add).result()


def _cast_rows(
    transport: oslo_messaging.Transport,
    fanout: Fanout,
    reports: dict[str, dict[str, Any]],
    topic: str,
    repeats: int,
) -> dict[str, dict[str, Any]]:
    client = oslo_messaging.get_rpc_client(
        transport, oslo_messaging.Target(topic=topic)
    ).prepare(fanout=True)
    rows = {}
    for label, caps in reports.items():
        kwargs = {
            "service_name": "volume",
            "host": HOST,
            "capabilities": caps,
            "cluster_name": None,
            "timestamp": "2026-01-01T00:00:00+00:00",
        }
        cast = functools.partial(
            client.cast, {"request_id": "req-bench"}, "update_service_capabilities"
        )
        seen = len(fanout.sizes) + 1
        cast(**kwargs)  # Warm-up (connection, exchange)
        fanout.wait(seen)
        times = _timed(functools.partial(cast, **kwargs), repeats)
        fanout.wait(seen + repeats)
        rows[label] = {"bytes": fanout.sizes[-1], "cast": _summary(times)}
    return rows


async def _request_times(
    publisher: Publisher, fanout: Fanout, repeats: int
) -> list[float]:
    loop = asyncio.get_running_loop()
    await publisher.first_report()
    seen = len(fanout.sizes) + 1
    await publisher.start()
    await loop.run_in_executor(None, fanout.wait, seen)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        publisher.request()
        seen += 1
        await loop.run_in_executor(None, fanout.wait, seen)
        times.append(time.perf_counter() - started)
    await publisher.stop()
    return times


def _publisher_rows(
    conf: cfg.ConfigOpts,
    transport: oslo_messaging.Transport,
    fanout: Fanout,
    store: Store,
    state_path: str,
    repeats: int,
) -> dict[str, dict[str, Any]]:
    executor = concurrent.futures.ThreadPoolExecutor(8)
    senders = Senders(2)
    senders.start()
    rows: dict[str, dict[str, Any]] = {}
    try:
        for count in POOLS:
            driver = _driver(conf, count, state_path)
            host = f"bench@bench{count}"
            names = [p["pool_name"] for p in driver.get_volume_stats(True)["pools"]]
            _record_volumes(store, host, names)

            def check(driver: VolumeDriver = driver, host: str = host) -> None:
                report = capability_report.check(driver.get_volume_stats(True))
                allocations = store.submit(
                    functools.partial(records.pool_allocations, service=host)
                ).result()
                capability_report.with_allocations(report, allocations)

            published: list[dict[str, Any]] = []
            publisher = Publisher(
                conf,
                driver=driver,
                host=host,
                cluster=None,
                store=store,
                executor=executor,
                senders=senders,
                transport=transport,
                on_report=published.append,
            )
            request = asyncio.run(_request_times(publisher, fanout, repeats))
            rows[f"{count} pools"] = {
                "report": published[-1],
                "check": _summary(_timed(check, repeats)),
                "request": _summary(request),
            }
    finally:
        senders.stop(10)
        executor.shutdown()
    return rows


def _ratio(row: dict[str, Any], base: dict[str, Any], key: str) -> float | None:
    if key not in row or key not in base:
        return None
    return float(row[key]["median"] / base[key]["median"])


def _table(results: dict[str, dict[str, Any]]) -> str:
    base, one = results["empty pools (baseline)"], results["1 pools"]
    lines = [
        "| report | bytes | x | cast ms (min / median / max) | x "
        "| check ms | x | request ms | x |",
        "|---|---:|---:|---|---:|---|---:|---|---:|",
    ]

    def ms(row: dict[str, Any], key: str) -> str:
        if key not in row:
            return "-"
        return " / ".join(f"{row[key][k] * 1e3:.2f}" for k in ("min", "median", "max"))

    def times(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    for label, row in results.items():
        lines.append(
            f"| {label} | {row['bytes']:,} | {row['bytes'] / base['bytes']:.1f} "
            f"| {ms(row, 'cast')} | {times(_ratio(row, base, 'cast'))} "
            f"| {ms(row, 'check')} | {times(_ratio(row, one, 'check'))} "
            f"| {ms(row, 'request')} | {times(_ratio(row, one, 'request'))} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--url", default=RABBIT_URL)
    args = parser.parse_args()

    # The global CONF: oslo.messaging registers some options only there.
    conf = cfg.CONF
    backend.register_opts(conf)
    capabilities.register_opts(conf)
    topic = f"bench-sched-{uuid.uuid4().hex[:8]}"
    conf.set_override("scheduler_topic", topic)
    transport = oslo_messaging.get_rpc_transport(conf, url=args.url)
    fanout = Fanout(args.url, topic)
    with tempfile.TemporaryDirectory() as state_path:
        store = Store(f"sqlite:///{state_path}/bench.sqlite")
        store.start()
        try:
            published = _publisher_rows(
                conf, transport, fanout, store, state_path, args.repeats
            )
            reports: dict[str, dict[str, Any]] = {
                "empty pools (baseline)": {
                    **published["1 pools"]["report"],
                    "pools": [],
                }
            }
            reports.update({k: v.pop("report") for k, v in published.items()})
            results = _cast_rows(transport, fanout, reports, topic, args.repeats)
        finally:
            store.stop(10)
            fanout.close()
            transport.cleanup()
    for label, row in published.items():
        results[label].update(row)
    print(_table(results))
    print()
    print(json.dumps({"repeats": args.repeats, "results": results}, indent=2))


if __name__ == "__main__":
    main()
