"""CPU time of a process (and of each of its threads) and of the broker,
read from the kernel (psutil): what a server spends per request, which no
sampling profiler can under- or over-count."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field

import psutil

__all__ = ["Spent", "broker_pid", "spent", "thread_times"]


@functools.cache
def broker_pid() -> int | None:
    """RabbitMQ's Erlang VM on this machine, read only; None if not found."""
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == "beam.smp":
            return int(proc.pid)
    return None


def _cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def thread_times(pid: int) -> dict[int, float]:
    """CPU seconds so far of each thread of ``pid``, by native thread id."""
    try:
        threads = psutil.Process(pid).threads()
    except psutil.Error:
        return {}
    return {t.id: t.user_time + t.system_time for t in threads}


@dataclass
class Spent:
    """CPU seconds spent while a block ran."""

    server: float = 0.0
    broker: float = 0.0
    threads: dict[int, float] = field(default_factory=dict)


@contextlib.contextmanager
def spent(pid: int) -> Iterator[Spent]:
    """Measure the CPU ``pid`` (each thread too) and the broker spend."""
    result = Spent()
    server, broker, threads = _cpu(pid), _cpu(broker_pid()), thread_times(pid)
    try:
        yield result
    finally:
        after = thread_times(pid)
        result.server = _cpu(pid) - server
        result.broker = _cpu(broker_pid()) - broker
        result.threads = {
            tid: cpu - threads.get(tid, 0.0) for tid, cpu in after.items()
        }
