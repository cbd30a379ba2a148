"""Run volworker's benchmark suite (issue 7) against the local RabbitMQ.

    bench/run [--quick] [--figures 1,2,...] [--repeats N] [--no-profile]

Writes ``bench/results/latest.json`` and ``bench/results/latest.md`` (and
the py-spy readings of figure 1 next to them) and prints the table. Every
figure is measured side by side with its baseline, in rotating order, over
``--repeats`` repeats; the table gives min / median / max and the ratio of
medians with the range of the per-repeat ratios. Figures:

1. create throughput: volworker (metrics off, and on) vs a bare oslo.messaging server
2. get_volume call round trip, p50 and p99, vs a bare oslo.messaging call
3. start to READY=1, fake and file driver, vs the bare server's start
4. ordering cost: 1, 8, 64, 1,000 volumes in flight
5. concurrency: 50 ms operations, max_concurrent_operations 8, 32, 64
6. capabilities, 1 / 100 / 1,000 pools (runs bench/capabilities.py)
7. file driver on XFS reflink, 1 vs 10 GiB (needs root)
8. RSS idle and with 10,000 volumes in the store
9. memory of NBD exports (TLS-PSK), 1 vs 200 attachments, against one
   qemu-storage-daemon serving 200 exports (``apt-get install
   qemu-system-common`` for that baseline)
10. RSS during a flood of 100,000 casts, vs idle and vs the bare server
    (one repeat: it takes minutes)
11. rbd driver on a throwaway Ceph: latency and throughput against direct
    librbd, clone of 1 vs 10 GiB (runs bench/rbd.py)
12. the ceiling of a create's messaging: the bare oslo server + Notifier vs
    a kombu consumer (a confirm wait per publish) vs py-amqp with confirms
    pipelined, draining the same casts (bench/ceiling.py)
"""

from __future__ import annotations

import warnings

# NOTE: oslo.service imports eventlet only to warn that it is deprecated.
warnings.filterwarnings("ignore", message="\\s*Eventlet is deprecated")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

from bench import (  # noqa: E402
    calls,
    capabilities_fig,
    ceiling,
    concurrency,
    create,
    flood,
    machine,
    memory,
    nbd_memory,
    ordering,
    pyspy,
    rbd,
    reflink,
    report,
    startup,
)
from bench.broker import BROKER, purge_queues, queue_depth  # noqa: E402
from volworker.testing.listen import VHOST  # noqa: E402

#: sizes of each figure: (full run, --quick)
SIZES: dict[str, tuple[Any, Any]] = {
    "casts": (20_000, 2_000),
    "ceiling_casts": (10_000, 2_000),
    "calls": (2_000, 300),
    "ordering_ops": (3_000, 400),
    "per_slot": (100, 10),
    "volumes": (10_000, 1_000),
    "flood": (100_000, 10_000),
    "file_sizes": ([1, 10], [1, 2]),
    "file_repeats": (5, 2),
    "copies": (2, 1),
    "capabilities_repeats": (20, 3),
    "attachments": (200, 20),
    "rbd": (
        {"each": 10, "burst": 100, "clone_sizes": [1, 10]},
        {"each": 3, "burst": 20, "clone_sizes": [1, 2]},
    ),
    "repeats": (3, 2),
}

NOTIFICATION_QUEUES = ("notifications.info", "notifications.error")
FIGURES = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12")

NOTES = [
    "Ratios are of medians; the range in brackets is of the per-repeat ratios "
    "(repeat i of one variant against repeat i of its baseline, run side by side).",
    "Figures 1, 4, 5: the server's queue is filled while it is stopped, then "
    "it is started and timed from its first `.start` to its last `.end` "
    "notification by the timestamps the publisher puts on them (the bare "
    "server without notifications: by its own counter), so neither the "
    "sender nor the collector sets the pace; their own ceilings are rows of "
    "figure 1.",
    "The bare server is an oslo.messaging RPC server (threading executor, "
    "default executor_thread_pool_size) on the same transport URL whose "
    "create_volume sends volume.create.start and .end through a "
    "messagingv2 Notifier and nothing else (bench/bare_server.py).",
    "Figure 9 sums RSS and PSS (/proc/PID/smaps_rollup) over the export "
    "processes after a client wrote and read 1 MiB through TLS on each export; "
    "PSS shares each page among the processes mapping it (other qemu "
    "processes on the machine included), so it is the memory the exports "
    "really take, while RSS counts the shared libraries once per process.",
    "Figure 7 times each operation from the cast to the arrival of its `.end` "
    "notification; the full copy (read, write, fsync) reads a file just "
    "written, from the page cache.",
    "Figure 11 runs on a throwaway single-node Ceph (memstore, pool size 1, "
    "monitor proposals every 20 ms instead of 1 s, so a snapshot takes tens "
    "of ms, not a second) on the same 2 cores; its direct baseline makes the "
    "librbd calls the driver makes (a clone: snapshot, protect, clone) in the "
    "bench process, on as many threads as the worker runs operations.",
]


def _log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    load = " ".join(f"{x:.2f}" for x in machine.load())
    print(f"[{stamp} load {load}] {message}", file=sys.stderr, flush=True)


def _figures(
    args: argparse.Namespace, tmp: pathlib.Path, out: pathlib.Path
) -> dict[str, Callable[[], dict[str, Any]]]:
    k = 1 if args.quick else 0
    size = {name: values[k] for name, values in SIZES.items()}
    r = args.repeats or size["repeats"]
    if args.casts:
        size["casts"] = args.casts
    return {
        "1": lambda: create.run(tmp, size["casts"], r, out, args.profile, _log),
        "2": lambda: calls.run(tmp, size["calls"], r, _log),
        "3": lambda: startup.run(tmp, r, _log),
        "4": lambda: ordering.run(tmp, size["ordering_ops"], r, _log),
        "5": lambda: concurrency.run(tmp, size["per_slot"], r, _log),
        "6": lambda: capabilities_fig.run(size["capabilities_repeats"], _log),
        "7": lambda: reflink.run(
            tmp, size["file_sizes"], size["file_repeats"], size["copies"], _log
        ),
        "8": lambda: memory.run(tmp, size["volumes"], r, _log),
        "9": lambda: nbd_memory.run(tmp, size["attachments"], r, _log),
        "10": lambda: flood.run(tmp, size["flood"], 1, _log),
        "11": lambda: rbd.run(tmp, size["rbd"], r, _log),
        "12": lambda: ceiling.run(tmp, size["ceiling_casts"], r, _log),
    }


def _profile_brief(profile: dict[str, Any], out: pathlib.Path) -> str:
    """CPU per thread group in the py-spy rounds of figure 1."""
    lines = [f"Figure 1 under py-spy (readings in {out}/fig1-pyspy-*.summary.txt):", ""]
    for label, reading in profile.items():
        threads = ", ".join(
            f"{name} {row['cpu_cores']:.2f}"
            for name, row in reading["threads"].items()
            if row["cpu_cores"] >= 0.01
        )
        lines.append(
            f"- {label}: {reading['rate_under_profiler']:.0f}/s under the profiler, "
            f"process CPU {reading['cpu_cores']:.2f} cores; by thread: {threads}"
        )
    return "\n".join(lines) + "\n"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: few repeats, small sizes"
    )
    parser.add_argument(
        "--figures", default=",".join(FIGURES), help="which figures, e.g. 1,2"
    )
    parser.add_argument("--repeats", type=int, help="repeats of each figure")
    parser.add_argument(
        "--casts", type=int, help="casts each variant of figure 1 drains"
    )
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        help="py-spy rounds of figure 1 (default: on, off with --quick)",
    )
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path(__file__).with_name("results"),
        help="where latest.json and latest.md go",
    )
    parser.add_argument(
        "--merge",
        type=pathlib.Path,
        help="an earlier run's results file: the figures of this run replace "
        "its own (one that failed there, measured again), with a note",
    )
    parser.add_argument(
        "--why",
        default="after failing in the run above",
        help="with --merge: why the figures were measured again, for the note",
    )
    args = parser.parse_args(argv)
    if args.profile is None:
        args.profile = not args.quick
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    out: pathlib.Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    wanted = [f.strip() for f in args.figures.split(",") if f.strip()]
    unknown = sorted(set(wanted) - set(FIGURES))
    if unknown:
        print(
            f"bench/run: no figure {', '.join(unknown)} ({', '.join(FIGURES)})",
            file=sys.stderr,
        )
        return 2
    if args.profile and "1" in wanted and not pyspy.PYSPY.exists():
        print(
            f"bench/run: {pyspy.PYSPY} is missing: run scripts/bootstrap "
            "(it installs the bench extra), or pass --no-profile",
            file=sys.stderr,
        )
        return 2
    result: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "repeats": args.repeats or SIZES["repeats"][1 if args.quick else 0],
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine.machine(BROKER),
        "vhost": VHOST or "/",
        "load": {"start": machine.load()},
        "notifications.info depth": {"start": queue_depth("notifications.info")},
        "figures": {},
        "failed": [],
        "rows": [],
        "notes": list(NOTES),
    }
    began = time.monotonic()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="run-", dir=out))
    try:
        figures = _figures(args, tmp, out)
        for fig in wanted:
            _log(f"figure {fig}")
            try:
                data = figures[fig]()
            except Exception:
                # NOTE: one figure failing should not cost the others' figures.
                _log(f"figure {fig} failed:\n{traceback.format_exc()}")
                result["failed"].append(fig)
                continue
            data["load_after"] = machine.load()
            if VHOST:
                # NOTE: oslo's notifications.info queue, filled by every
                # notification sent, is ours in this run's virtual host; a
                # broker holding a figure's backlog would slow the next one.
                purge_queues(NOTIFICATION_QUEUES)
            result["figures"][fig] = data
            result["rows"] += data["rows"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["load"]["end"] = machine.load()
    result["notifications.info depth"]["end"] = queue_depth("notifications.info")
    result["seconds"] = round(time.monotonic() - began, 1)
    result["notes"].append(
        "Load average (1, 5, 15 min) after each figure: "
        + "; ".join(
            f"{fig}: {' '.join(map(str, data['load_after']))}"
            for fig, data in result["figures"].items()
        )
        + f". The run took {result['seconds']:.0f} s."
    )
    if args.merge is not None:
        result = report.merged(json.loads(args.merge.read_text()), result, args.why)
    text = report.markdown(result)
    if "6" in result["figures"] and result["figures"]["6"].get("table"):
        text += "\nbench/capabilities.py:\n\n" + result["figures"]["6"]["table"] + "\n"
    profile = result["figures"].get("1", {}).get("profile")
    if profile:
        text += "\n" + _profile_brief(profile, out)
    (out / "latest.json").write_text(json.dumps(result, indent=2, default=str))
    (out / "latest.md").write_text(text)
    print(text)
    if result["failed"]:
        print(
            f"bench/run: figure(s) {', '.join(result['failed'])} failed",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
