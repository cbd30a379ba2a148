"""A drain round: how fast a server empties a queue that was filled first.

A sender on one thread tops out below what a bare server drains (design.md,
measured facts), so a server fed live would only measure the sender. A round
therefore fills the server's queue while the server is stopped, then starts
it and times it, by the publisher's stamps on its notifications, from the
first ``.start`` to the last ``.end`` (or, for a server that sends no
notifications, by its own counter). Filling the queue is also where the
sender's own rate is measured.

1. start the server and wait for READY=1 (its queues now exist);
2. ``setup`` (e.g. create the volumes the round works on);
3. stop it (SIGTERM): its queues stay on the broker;
4. ``send`` every request: the sender's rate, with nobody consuming;
5. start the server again and wait for the last ``.end``.

With ``freeze``, steps 3 and 5 are SIGSTOP and SIGCONT instead: the process
keeps what it holds in memory (the fake driver's volumes), and what the
broker pushes to it waits in its socket until it runs again.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bench.broker import delete_queues
from bench.counting import EventCounter
from bench.cpu import Spent, spent
from volworker.rpc.rpcapi import VolumeAPI
from volworker.testing.worker import RABBIT_URL, Worker

__all__ = [
    "Round",
    "Session",
    "by_notifications",
    "by_server_counter",
    "drain",
    "rotation",
    "session",
]

#: what to do with the server's pid while it drains (e.g. profile it)
Watch = Callable[[int], contextlib.AbstractContextManager[Any]]


@dataclass
class Session:
    """A server with a client and a notification counter, for one round."""

    server: Worker
    api: VolumeAPI
    counter: EventCounter

    @property
    def backend(self) -> str:
        return next(iter(self.server.backends))

    @property
    def host(self) -> str:
        return self.server.server(self.backend)

    def volume(self, volume_id: str, size: int = 1, **fields: Any) -> dict[str, Any]:
        return {"id": volume_id, "size": size, "host": self.host, **fields}

    def restart(self) -> float:
        """Stop (SIGTERM, exit 0 expected) and start again; seconds to READY."""
        self.stop()
        return self.start()

    def start(self) -> float:
        started = time.monotonic()
        self.server.start().wait_ready(60)
        return time.monotonic() - started

    def stop(self) -> None:
        code = self.server.stop()
        if code != 0:
            raise RuntimeError(f"server exited {code}; log:\n{self.server.log()}")


@contextlib.contextmanager
def session(server: Worker, start: bool = True) -> Iterator[Session]:
    """Start ``server`` (unless told not to); at the end kill it, close the
    client and counter and delete the queues it leaves behind."""
    counter = EventCounter(f"volworker.{server.host}@")
    api = VolumeAPI.from_url(RABBIT_URL, topic=server.topic, timeout=120)
    s = Session(server, api, counter)
    try:
        if start:
            s.start()
        yield s
    finally:
        server.close()
        api.close()
        counter.close()
        servers = [server.server(b) for b in server.backends]
        delete_queues([server.topic, *(f"{server.topic}.{n}" for n in servers)])


def rotation(names: Sequence[str], repeat: int) -> list[str]:
    """``names`` in the order of repeat ``repeat``: each repeat starts one
    further on, so no variant always runs first (or last)."""
    k = repeat % len(names)
    return [*names[k:], *names[:k]]


@dataclass
class Round:
    """What one drain round measured."""

    count: int
    seconds: float  # first start to last end, by the server's stamps
    send_seconds: float  # filling the queue, nobody consuming
    cpu: Spent  # from the server's start (or thaw) to the last request done

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def send_rate(self) -> float:
        return self.count / self.send_seconds

    @property
    def server_cpu_ms(self) -> float:
        """Server CPU per request."""
        return self.cpu.server / self.count * 1e3

    @property
    def broker_cpu_ms(self) -> float:
        """Broker CPU per request (it serves others too: an upper bound)."""
        return self.cpu.broker / self.count * 1e3


#: waits until ``count`` requests are done; returns the seconds they took
Finish = Callable[[Session, int, float], float]


def by_notifications(kind: str) -> Finish:
    """Done when ``count`` ``<kind>.end`` notifications have come; seconds
    from the first ``<kind>.start`` to the last ``<kind>.end`` by the
    publisher's stamps. ``kind`` is e.g. ``volume.create``."""

    def finish(s: Session, count: int, timeout: float) -> float:
        s.counter.wait_count(f"{kind}.end", count, timeout)
        return s.counter.span(f"{kind}.start", f"{kind}.end")

    return finish


def by_server_counter(s: Session, count: int, timeout: float) -> float:
    """For the bare server without notifications: ask its counter (a call,
    which waits in the same queue behind the casts) until ``count`` are
    done; seconds from the first create's start to the last one's end."""
    # bench_stats is the bare server's own method, of its endpoint's 1.0;
    # the API's client would ask for the contract's version
    client = s.api.client.prepare(server=s.host, version="1.0", timeout=timeout)
    deadline = time.monotonic() + timeout
    while True:
        stats = client.call({}, "bench_stats")
        if stats["count"] >= count:
            return float(stats["last"] - stats["first"])
        if time.monotonic() > deadline:
            raise TimeoutError(f"{stats['count']} of {count} creates done")
        time.sleep(0.05)


def drain(
    s: Session,
    send: Callable[[Session], int],
    finish: Finish,
    *,
    setup: Callable[[Session], None] | None = None,
    watch: Watch | None = None,
    freeze: bool = False,
    timeout: float = 600,
) -> Round:
    """One round, as the module's doc says, on a started session."""
    if setup is not None:
        setup(s)
    assert s.server.proc is not None
    if freeze:
        s.server.signal(signal.SIGSTOP)
    else:
        s.stop()
    s.counter.reset()
    began = time.perf_counter()
    count = send(s)
    send_seconds = time.perf_counter() - began
    with contextlib.ExitStack() as stack:
        if freeze:
            cpu = stack.enter_context(spent(s.server.proc.pid))
            s.server.signal(signal.SIGCONT)
        else:
            s.start()
            cpu = stack.enter_context(spent(s.server.proc.pid))
        if watch is not None:
            stack.enter_context(watch(s.server.proc.pid))
        seconds = finish(s, count, timeout)
    return Round(count, seconds, send_seconds, cpu)
