"""The capabilities subcommand: the pools the workers report, as a scheduler
sees them.

    volworker-client capabilities [--watch] [--stale-after SECONDS]

It binds to the scheduler topic's fanout, asks every worker of the volume
topic to publish at once (``publish_service_capabilities``) and prints one
row per pool once the reports stop coming (at most ``--wait`` seconds);
with ``--watch`` it goes on listening and redraws until interrupted.
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import oslo_messaging
from oslo_config import cfg

from volworker.cmd._client.errors import EXIT_UNREACHED, ClientError
from volworker.cmd._client.registry import Commands
from volworker.cmd._client.session import Session
from volworker.scheduler import CapabilityListener, Pool, PoolView

__all__ = ["COLUMNS", "register"]

DEFAULT_SCHEDULER_TOPIC = "volworker-scheduler"
COLUMNS = ("pool", "used", "free", "allocated", "volumes", "provisioning", "age")
#: After the first report, this much quiet means every worker has answered.
QUIET = 0.5
CLEAR = "\033[H\033[J"


def _gb(value: Any) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def _used(caps: dict[str, Any]) -> str:
    total, free = caps.get("total_capacity_gb"), caps.get("free_capacity_gb")
    if not isinstance(total, int | float) or not isinstance(free, int | float):
        return f"? of {_gb(total)} GiB"
    share = f" ({(total - free) / total:.0%})" if total else ""
    return f"{_gb(total - free)} of {_gb(total)} GiB{share}"


def _provisioning(caps: dict[str, Any]) -> str:
    kinds = [
        kind for kind in ("thin", "thick") if caps.get(f"{kind}_provisioning_support")
    ]
    return "+".join(kinds) or "-"


def _age(pool: Pool) -> str:
    seconds = int(pool.age)
    text = f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"
    return f"{text} STALE" if pool.stale else text


def _row(pool: Pool) -> dict[str, Any]:
    caps = pool.capabilities
    return {
        "pool": pool.key,
        "used": _used(caps),
        "free": f"{_gb(caps.get('free_capacity_gb'))} GiB",
        "allocated": f"{_gb(caps.get('allocated_capacity_gb', 0))} GiB",
        "volumes": caps.get("total_volumes"),
        "provisioning": _provisioning(caps),
        "age": _age(pool),
    }


def _record(pool: Pool) -> dict[str, Any]:
    """A pool for scripts: the report as it came, with its age."""
    return {
        "pool": pool.key,
        "host": pool.host,
        "cluster_name": pool.cluster_name,
        "timestamp": pool.timestamp.isoformat(),
        "age": round(pool.age, 1),
        "stale": pool.stale,
        "capabilities": pool.capabilities,
    }


def _show(session: Session, view: PoolView) -> None:
    pools = view.pools()
    if session.out.fmt == "json":
        session.out.table([_record(p) for p in pools], COLUMNS)
    elif pools:
        session.out.table([_row(p) for p in pools], COLUMNS)
    else:
        session.out.stream.write("no capabilities reported\n")
    session.out.stream.flush()


def _scheduler_topic(args: argparse.Namespace) -> str:
    if args.scheduler_topic:
        return str(args.scheduler_topic)
    if args.config_file:
        conf = cfg.ConfigOpts()
        conf.register_opt(cfg.StrOpt("scheduler_topic"))
        conf(args=[], default_config_files=[args.config_file], default_config_dirs=[])
        if conf.scheduler_topic:
            return str(conf.scheduler_topic)
    return DEFAULT_SCHEDULER_TOPIC


def _wait_for_reports(arrived: threading.Event, last: list[float], wait: float) -> None:
    """Until the reports stop coming, or ``wait`` seconds."""
    deadline = time.monotonic() + wait
    if not arrived.wait(wait):
        return
    while (now := time.monotonic()) < deadline and now - last[0] < QUIET:
        time.sleep(min(QUIET, deadline - now))


def _watch(session: Session, view: PoolView, every: float) -> None:
    """Redraw every ``every`` seconds until interrupted (Ctrl-C)."""
    clear = session.out.fmt == "table" and session.out.stream.isatty()
    try:
        while True:
            if clear:
                session.out.stream.write(CLEAR)
            _show(session, view)
            if not clear:
                session.out.stream.write("\n")
            time.sleep(every)
    except KeyboardInterrupt:
        return


def _capabilities(session: Session, args: argparse.Namespace) -> int:
    view = PoolView(stale_after=args.stale_after)
    arrived = threading.Event()
    last = [0.0]

    def on_update(host: str) -> None:
        last[0] = time.monotonic()
        arrived.set()

    topic = _scheduler_topic(args)
    api = session.api  # First, for its check that the broker answers
    transport = oslo_messaging.get_rpc_transport(cfg.CONF, url=session.settings.url)
    try:
        with CapabilityListener(transport, view, topic=topic, on_update=on_update):
            api.publish_service_capabilities()
            _wait_for_reports(arrived, last, args.wait)
            if args.watch:
                _watch(session, view, args.every)
                return 0
    finally:
        transport.cleanup()
    if not view.pools():
        raise ClientError(
            f"no worker reported on scheduler topic {topic!r} within "
            f"{args.wait:g}s (volume topic {session.settings.topic!r})",
            EXIT_UNREACHED,
        )
    _show(session, view)
    return 0


def register(commands: Commands) -> None:
    parser = commands.add(
        "capabilities",
        _capabilities,
        "the pools every worker reports to schedulers: capacity used of "
        "total, thin or thick, and how old the report is",
    )
    parser.add_argument(
        "--watch", action="store_true", help="keep listening and redraw"
    )
    parser.add_argument(
        "--every",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="with --watch, redraw this often (default: 2)",
    )
    parser.add_argument(
        "--stale-after",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="a report older than this is marked STALE (default: 180)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how long to wait for the first reports (default: 5)",
    )
    parser.add_argument(
        "--scheduler-topic",
        metavar="TOPIC",
        help="the workers' scheduler_topic (default: the config file's, or "
        f"{DEFAULT_SCHEDULER_TOPIC})",
    )
