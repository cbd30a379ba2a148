"""Figure 12: the ceiling of a create's messaging in one Python process.

Three servers drain the same number of pre-queued oslo-format
``create_volume`` casts (:mod:`bench.rounds`, sent by volworker's own
client) and send ``volume.create.start`` and ``.end`` in oslo's
``messagingv2`` format for each, every publish confirmed by the broker
before its cast is acknowledged (oslo acknowledges on arrival):

- the bare oslo.messaging RPC server with oslo's Notifier
  (:mod:`bench.bare_server`), the baseline;
- a kombu consumer waiting for each publish's confirm
  (:mod:`bench.ceiling_server`, mode ``each``);
- py-amqp with the confirms pipelined: a batch of casts' notifications
  published, one wait, then the batch acknowledged (mode ``pipelined``).

Each is timed from its first ``.start`` to its last ``.end`` by the
publisher's stamps, in rotating order within a repeat; so the figure shows
how far oslo's dispatch and notifier machinery is from what Python and the
broker allow, beside figure 1 in the same run.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

from bench import report
from bench.bare_server import BareServer
from bench.ceiling_server import factory
from bench.create import send_creates
from bench.rounds import by_notifications, drain, rotation, session
from bench.summary import ratio, summary
from volworker.testing.worker import Worker

__all__ = ["BATCH", "run"]

BATCH = 64
BARE = "bare oslo server + oslo Notifier"
EACH = "kombu consumer, a confirm wait per publish"
PIPELINED = f"py-amqp, confirms pipelined in batches of {BATCH}"

VARIANTS: dict[str, Callable[[pathlib.Path, str], Worker]] = {
    BARE: lambda tmp, name: BareServer(tmp, name=name),
    EACH: factory("each"),
    PIPELINED: factory("pipelined", BATCH),
}


def _round(tmp: pathlib.Path, variant: str, name: str, casts: int) -> dict[str, float]:
    with session(VARIANTS[variant](tmp, name)) as s:
        done = drain(s, send_creates(casts), by_notifications("volume.create"))
    return {"rate": done.rate, "server_cpu_ms": done.server_cpu_ms}


def _rows(casts: int, found: dict[str, Any], cpu: dict[str, Any]) -> list[report.Row]:
    rows = []
    for variant in VARIANTS:
        base = variant != BARE
        rows.append(
            report.row(
                "12",
                f"ceiling, {casts:,} casts, 2 confirmed notifications each: {variant}",
                found[variant],
                "/s",
                vs=BARE if base else "",
                ratio=ratio(found[variant], found[BARE]) if base else None,
            )
        )
    for variant in VARIANTS:
        rows.append(
            report.row("12", f"… server CPU per create: {variant}", cpu[variant], "ms")
        )
    return rows


def run(
    tmp: pathlib.Path, casts: int, repeats: int, log: Callable[[str], None]
) -> dict[str, Any]:
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for r in range(repeats):
        for i, variant in enumerate(rotation(list(VARIANTS), r)):
            done = _round(tmp, variant, f"f12-r{r}-v{i}", casts)
            rates[variant].append(done["rate"])
            cpu[variant].append(done["server_cpu_ms"])
            log(
                f"fig 12 repeat {r}: {variant}: {done['rate']:.0f}/s, "
                f"{done['server_cpu_ms']:.2f} ms CPU per create"
            )
    found = {name: summary(v) for name, v in rates.items()}
    cpu_found = {name: summary(v) for name, v in cpu.items()}
    return {
        "casts": casts,
        "batch": BATCH,
        "rates": found,
        "cpu_ms_per_create": cpu_found,
        "rows": _rows(casts, found, cpu_found),
    }
