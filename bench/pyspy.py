"""py-spy on a server while it drains, and a reading of what it saw.

:func:`pyspy` records raw stacks (``--threads``: every line starts with the
thread's name) of a pid while the block runs, in one of two modes:

- ``gil``: only the thread holding the GIL is sampled: where the CPU of a
  Python process goes; the samples over wall time say how busy the GIL was;
- ``wall``: every thread at every sample, idle or not (``--idle``,
  ``--nonblocking`` so the process is not paused): where each thread's
  wall time goes, waiting included.

:func:`summarise` reads them back: per thread (threads of a pool taken
together) its share of the samples, and the frames with most inclusive and
most self time, overall and per thread.
"""

from __future__ import annotations

import collections
import contextlib
import json
import pathlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench.cpu import thread_times

__all__ = ["record", "render", "summarise"]

PYSPY = pathlib.Path(sys.executable).with_name("py-spy")
RATE = 100


@contextlib.contextmanager
def record(pid: int, output: pathlib.Path, mode: str) -> Iterator[None]:
    """Record ``pid`` with py-spy (``mode`` gil or wall) while the block runs."""
    cmd = [str(PYSPY), "record", "--pid", str(pid), "--format", "raw"]
    cmd += ["--threads", "--rate", str(RATE), "--output", str(output)]
    cmd += {"gil": ["--gil"], "wall": ["--idle", "--nonblocking"]}[mode]
    with open(output.with_suffix(".log"), "wb") as log:
        spy = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    began = time.monotonic()
    threads = thread_times(pid)
    try:
        yield
    finally:
        seconds = time.monotonic() - began
        cpu = {t: v - threads.get(t, 0.0) for t, v in thread_times(pid).items()}
        output.with_suffix(".cpu.json").write_text(json.dumps(cpu))
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
        output.with_suffix(".seconds").write_text(f"{seconds:.3f}\n")


def _thread_group(name: str) -> str:
    """Threads of one pool count together: ``sender-3`` -> ``sender-*``."""
    return re.sub(r"[0-9a-f]*\d[0-9a-f]*", "*", name)


def _frame(frame: str) -> str:
    """``fn (path/file.py:123)`` -> ``fn (path/file.py)``."""
    return re.sub(r":\d+\)$", ")", frame)


#: frames on every stack of a thread or of the main thread: no information
_ROOTS = re.compile(
    r"^(Thread\.(run|_bootstrap|_bootstrap_inner) \(threading\.py\)"
    r"|_run_(module_as_main|code) \(<frozen runpy>\)"
    r"|<module> \(.*\)|main \(volworker/cmd/worker\.py\)"
    r"|(run|Runner\.run) \(asyncio/runners\.py\)"
    r"|BaseEventLoop\.(run_until_complete|run_forever) \(.*\))$"
)


def _parse(path: pathlib.Path) -> tuple[list[Any], dict[int, str]]:
    """The stacks as (thread name, frames, count), and thread names by id."""
    stacks = []
    names = {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        head, *frames = stack.split(";")
        tid, _, thread = head.partition(": ")
        with contextlib.suppress(ValueError):
            names[int(tid.removeprefix("thread (").rstrip(")"), 0)] = thread
        frames = [_frame(f) for f in frames]
        stacks.append((thread, [f for f in frames if not _ROOTS.match(f)], int(count)))
    return stacks, names


def _thread_cpu(path: pathlib.Path, names: dict[int, str]) -> dict[str, float]:
    """CPU seconds per thread group; threads py-spy never saw count as
    ``(unnamed)``."""
    cpu: collections.Counter[str] = collections.Counter()
    cpu_file = path.with_suffix(".cpu.json")
    if cpu_file.exists():
        for tid, seconds in json.loads(cpu_file.read_text()).items():
            name = names.get(int(tid))
            cpu[_thread_group(name) if name else "(unnamed)"] += seconds
    return dict(cpu)


def _shares(counter: collections.Counter[str], total: int, top: int) -> list[Any]:
    return [(frame, n / total) for frame, n in counter.most_common(top)]


def summarise(path: pathlib.Path, top: int = 25) -> dict[str, Any]:
    """Per thread group: share of samples (and of wall time: how many
    threads' worth were seen at a sample); top inclusive and self frames."""
    stacks, names = _parse(path)
    seconds = float(path.with_suffix(".seconds").read_text())
    cpu = _thread_cpu(path, names)
    total = sum(count for _, _, count in stacks) or 1
    wall = seconds * RATE
    threads: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    per_inclusive: dict[str, collections.Counter[str]] = collections.defaultdict(
        collections.Counter
    )
    per_self: dict[str, collections.Counter[str]] = collections.defaultdict(
        collections.Counter
    )
    for thread, frames, count in stacks:
        group = _thread_group(thread)
        threads[group] += count
        leaf = frames[-1] if frames else "(idle: no Python frame)"
        own[leaf] += count
        per_self[group][leaf] += count
        for frame in set(frames):
            inclusive[frame] += count
            per_inclusive[group][frame] += count
    return {
        "seconds": seconds,
        "samples": total,
        "cpu_cores": sum(cpu.values()) / seconds,
        "threads": {
            name: {
                "per_sample": threads[name] / wall,
                "share": threads[name] / total,
                "cpu_cores": cpu.get(name, 0.0) / seconds,
            }
            for name in sorted(set(threads) | set(cpu), key=lambda n: -cpu.get(n, 0.0))
        },
        "inclusive": _shares(inclusive, total, top),
        "self": _shares(own, total, top),
        "per_thread": {
            name: {
                "inclusive": _shares(per_inclusive[name], n, 12),
                "self": _shares(per_self[name], n, 8),
            }
            for name, n in threads.most_common()
            if n / total >= 0.03
        },
    }


def render(title: str, summary: dict[str, Any]) -> str:
    """A plain-text reading of :func:`summarise`."""
    lines = [
        f"## {title}: {summary['samples']} samples over {summary['seconds']:.1f} s",
        "",
        f"process CPU: {summary['cpu_cores']:.2f} cores (kernel's count, all threads)",
        "",
        "cpu = the thread group's CPU time / wall time (kernel's count);",
        "per sample = samples / (wall x rate): with --gil, the share of wall "
        "time it held the GIL; in wall mode, how many such threads;",
        "share = its share of the samples",
        "",
    ]
    for name, row in summary["threads"].items():
        lines.append(
            f"  {name:<40} cpu {row['cpu_cores']:5.2f}  per sample "
            f"{row['per_sample']:5.2f}  share {row['share']:6.1%}"
        )
    for key in ("inclusive", "self"):
        lines += ["", f"top {key} frames (share of all samples):"]
        lines += [f"  {share:6.1%}  {frame}" for frame, share in summary[key]]
    for name, frames in summary["per_thread"].items():
        for key in ("inclusive", "self"):
            lines += ["", f"thread {name}: top {key} frames (share of its samples):"]
            lines += [f"  {share:6.1%}  {frame}" for frame, share in frames[key]]
    return "\n".join(lines) + "\n"
