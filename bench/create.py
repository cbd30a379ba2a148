"""Figure 1: ``create_volume`` throughput through volworker (fake driver, no
latency) against the bare oslo.messaging server doing the same messaging
work (receive, ``.start`` and ``.end`` notifications), and the bare server
with no notifications at all.

Each variant drains the same number of casts from a queue filled while it
was stopped (:mod:`bench.rounds`), counted by its ``volume.create.end``
notifications (the bare server without notifications: by its own counter),
in the same repeat, in rotating order; volworker runs both with metrics off
and with metrics on and scraped every second (:mod:`bench.scraping`), so
their ratio is what metrics cost. Two ceilings are measured too: the
sender's rate while it fills a queue, and the collector's rate draining a
backlog of notifications, to show neither limits the figure.
"""

from __future__ import annotations

import json
import pathlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import kombu

from bench import report
from bench.bare_server import BareServer
from bench.counting import EventCounter
from bench.pyspy import record, render, summarise
from bench.rounds import (
    Finish,
    Session,
    by_notifications,
    by_server_counter,
    drain,
    rotation,
    session,
)
from bench.scraping import SCRAPE_INTERVAL, scraped
from bench.summary import ratio, summary
from volworker.testing.listen import BROKER
from volworker.testing.worker import Worker

__all__ = ["collector_ceiling", "run", "send_creates"]

TARGET = 0.9
VOLWORKER = "volworker (fake)"
METERED = f"volworker (fake), metrics scraped every {SCRAPE_INTERVAL:g} s"
OSLO_INTAKE = "volworker (fake), rpc_intake = oslo"
ALL_OSLO = "volworker (fake), rpc_intake = oslo + notification_publisher = oslo"
BARE = "bare oslo server + notifications"
BARE_SILENT = "bare oslo server, no notifications"


def fake_worker(
    tmp: pathlib.Path, name: str, extra: dict[str, Any] | None = None, **backend: Any
) -> Worker:
    return Worker(
        tmp, {"fake": {"volume_driver": "fake", **backend}}, name=name, extra=extra
    )


def metered_worker(tmp: pathlib.Path, name: str) -> Worker:
    return fake_worker(tmp, name, extra={"metrics": {"listen": "127.0.0.1:0"}})


def configured_worker(tmp: pathlib.Path, name: str, **defaults: Any) -> Worker:
    return Worker(
        tmp,
        {"fake": {"volume_driver": "fake"}},
        name=name,
        defaults=defaults,
    )


def oslo_intake_worker(tmp: pathlib.Path, name: str) -> Worker:
    return configured_worker(tmp, name, rpc_intake="oslo")


def all_oslo_worker(tmp: pathlib.Path, name: str) -> Worker:
    return configured_worker(
        tmp, name, rpc_intake="oslo", notification_publisher="oslo"
    )


VARIANTS: dict[str, tuple[Callable[[pathlib.Path, str], Worker], Finish]] = {
    VOLWORKER: (fake_worker, by_notifications("volume.create")),
    METERED: (metered_worker, by_notifications("volume.create")),
    OSLO_INTAKE: (oslo_intake_worker, by_notifications("volume.create")),
    ALL_OSLO: (all_oslo_worker, by_notifications("volume.create")),
    BARE: (
        lambda tmp, name: BareServer(tmp, name=name),
        by_notifications("volume.create"),
    ),
    BARE_SILENT: (
        lambda tmp, name: BareServer(tmp, name=name, notifications=False),
        by_server_counter,
    ),
}


def send_creates(count: int) -> Callable[[Session], int]:
    def send(s: Session) -> int:
        for _ in range(count):
            s.api.create_volume(s.volume(str(uuid.uuid4())))
        return count

    return send


def collector_ceiling(count: int) -> float:
    """Notifications per second the collector takes from a backlog: it is
    held while ``count`` are published, then let go and timed."""
    prefix = f"bench.{uuid.uuid4().hex[:8]}"
    counter = EventCounter(prefix)
    counter.gate.clear()
    exchange = kombu.Exchange("openstack", type="topic", durable=False)
    stamp = "2026-01-01 00:00:00.000000"
    try:
        with kombu.Connection(BROKER) as conn:
            producer = conn.Producer(exchange=exchange)
            for i in range(count):
                message = {
                    "message_id": str(uuid.uuid4()),
                    "publisher_id": prefix,
                    "event_type": "volume.create.end",
                    "priority": "INFO",
                    "payload": {"id": str(uuid.uuid4()), "n": i, "status": "available"},
                    "timestamp": stamp,
                }
                body = {"oslo.version": "2.0", "oslo.message": json.dumps(message)}
                # Not notifications.info: nothing lands in the shared queue.
                producer.publish(body, routing_key="notifications.bench")
        began = time.monotonic()
        counter.gate.set()
        counter.wait_count("volume.create.end", count, 300)
        return count / (counter.arrived - began)
    finally:
        counter.gate.set()
        counter.close()


def _round(
    tmp: pathlib.Path, variant: str, name: str, casts: int, watch: Any = None
) -> dict[str, float]:
    make, finish = VARIANTS[variant]
    with session(make(tmp, name)) as s:
        if variant == METERED:
            watch = scraped(s.server)
        done = drain(s, send_creates(casts), finish, watch=watch)
    return {
        "rate": done.rate,
        "send_rate": done.send_rate,
        "server_cpu_ms": done.server_cpu_ms,
        "broker_cpu_ms": done.broker_cpu_ms,
    }


#: extra rounds under py-spy (not counted in the figure): what the worker's
#: CPU goes to, where its threads wait, and the bare server's CPU to compare
PROFILES = ((VOLWORKER, "gil"), (VOLWORKER, "wall"), (BARE, "gil"))


def _profile(tmp: pathlib.Path, casts: int, out: pathlib.Path) -> dict[str, Any]:
    readings = {}
    for variant, mode in PROFILES:
        label = f"{'volworker' if variant == VOLWORKER else 'bare'}-{mode}"
        raw = out / f"fig1-pyspy-{label}.txt"

        def watch(pid: int, raw: pathlib.Path = raw, mode: str = mode) -> Any:
            return record(pid, raw, mode)

        done = _round(tmp, variant, f"f1-profile-{label}", casts, watch)
        reading = summarise(raw)
        reading["rate_under_profiler"] = done["rate"]
        title = f"{variant} draining {casts:,} creates, py-spy {mode} mode"
        text = render(title, reading)
        text += f"\nrate under the profiler: {done['rate']:.0f}/s\n"
        (out / f"fig1-pyspy-{label}.summary.txt").write_text(text)
        readings[label] = reading
    return readings


def _rows(
    casts: int, found: dict[str, Any], cpu: dict[str, Any], ceilings: dict[str, Any]
) -> list[report.Row]:
    vs_bare = ratio(found[VOLWORKER], found[BARE])
    rows = [
        report.row(
            "1",
            f"create throughput, {casts:,} casts: {VOLWORKER}",
            found[VOLWORKER],
            "/s",
            vs=BARE,
            ratio=vs_bare,
            target=f"≥ {TARGET}",
            met=vs_bare["of_medians"] >= TARGET,
        ),
        report.row(
            "1",
            f"… {VOLWORKER}",
            found[VOLWORKER],
            "/s",
            vs=BARE_SILENT,
            ratio=ratio(found[VOLWORKER], found[BARE_SILENT]),
        ),
        report.row(
            "1",
            f"… {BARE}",
            found[BARE],
            "/s",
            vs=BARE_SILENT,
            ratio=ratio(found[BARE], found[BARE_SILENT]),
        ),
        report.row("1", f"… {BARE_SILENT}", found[BARE_SILENT], "/s"),
        report.row(
            "1",
            f"… {OSLO_INTAKE}",
            found[OSLO_INTAKE],
            "/s",
            vs=BARE,
            ratio=ratio(found[OSLO_INTAKE], found[BARE]),
        ),
        report.row(
            "1",
            f"… {ALL_OSLO}",
            found[ALL_OSLO],
            "/s",
            vs=BARE,
            ratio=ratio(found[ALL_OSLO], found[BARE]),
        ),
        report.row(
            "1",
            f"… metrics on vs off: {METERED}",
            found[METERED],
            "/s",
            vs=f"{VOLWORKER}, metrics off",
            ratio=ratio(found[METERED], found[VOLWORKER]),
        ),
        report.row(
            "1",
            f"… metrics on vs off, server CPU per create: {METERED}",
            cpu[f"server {METERED}"],
            "ms",
            vs=f"{VOLWORKER}, metrics off",
            ratio=ratio(cpu[f"server {METERED}"], cpu[f"server {VOLWORKER}"]),
        ),
    ]
    for variant in VARIANTS:
        key = f"server {variant}"
        rows.append(
            report.row(
                "1",
                f"… server CPU per create: {variant}",
                cpu[key],
                "ms",
                vs=BARE if variant != BARE else "",
                ratio=ratio(cpu[key], cpu[f"server {BARE}"])
                if variant != BARE
                else None,
            )
        )
    for variant in VARIANTS:
        rows.append(
            report.row(
                "1",
                f"… broker CPU per create (shared broker): {variant}",
                cpu[f"broker {variant}"],
                "ms",
            )
        )
    rows += [
        report.row(
            "1",
            "… ceiling: the sender alone (casts/s into a stopped server's queue)",
            ceilings["sender"],
            "/s",
        ),
        report.row(
            "1",
            f"… ceiling: the collector draining a backlog of {2 * casts:,} "
            "notifications",
            ceilings["collector"],
            "/s",
        ),
    ]
    return rows


def run(
    tmp: pathlib.Path,
    casts: int,
    repeats: int,
    out: pathlib.Path,
    profile: bool,
    log: Callable[[str], None],
) -> dict[str, Any]:
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu: dict[str, list[float]] = {}
    send_rates: list[float] = []
    ceilings: list[float] = []
    for r in range(repeats):
        for i, variant in enumerate(rotation(list(VARIANTS), r)):
            done = _round(tmp, variant, f"f1-r{r}-v{i}", casts)
            rates[variant].append(done["rate"])
            send_rates.append(done["send_rate"])
            for part in ("server", "broker"):
                cpu.setdefault(f"{part} {variant}", []).append(done[f"{part}_cpu_ms"])
            log(
                f"fig 1 repeat {r}: {variant}: {done['rate']:.0f}/s, "
                f"{done['server_cpu_ms']:.2f} ms CPU per create"
            )
        ceilings.append(collector_ceiling(2 * casts))
        log(f"fig 1 repeat {r}: collector {ceilings[-1]:.0f}/s")
    found = {name: summary(v) for name, v in rates.items()}
    cpu_found = {name: summary(v) for name, v in cpu.items()}
    limits = {"sender": summary(send_rates), "collector": summary(ceilings)}
    result: dict[str, Any] = {
        "casts": casts,
        "rates": found,
        "cpu_ms_per_create": cpu_found,
        **limits,
        "rows": _rows(casts, found, cpu_found, limits),
    }
    if profile:
        result["profile"] = _profile(tmp, casts, out)
    return result
