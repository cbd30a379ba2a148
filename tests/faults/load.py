"""A mixed load for fault tests: a plan that is valid in the order it is
sent, a model of what it must leave behind, and a thread that sends it.

The plan is made by walking a model of the backend: each step is an
operation that is valid after every step before it (a clone's source
exists, a volume is deleted only without snapshots and attachments, ...).
Sent in plan order, back to back, it stays valid whatever the worker runs
concurrently, because the worker orders every operation behind the earlier
ones on the volumes it touches. Every operation carries a ``request_id`` of
its own, which the worker's journal keeps.

Attach and detach are calls. When a call gets no answer (the worker was
killed), the sender detaches by force until a detach is answered, so the
model knows every volume's attachment after each step.
"""

from __future__ import annotations

import concurrent.futures
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import oslo_messaging

from volworker.rpc.rpcapi import VolumeAPI

__all__ = ["CallOutcome", "Model", "Op", "Planner", "Sender", "reconcile"]

CAST_METHODS = frozenset(
    {
        "create_volume",
        "delete_volume",
        "extend_volume",
        "create_snapshot",
        "delete_snapshot",
        "revert_to_snapshot",
    }
)
CALL_METHODS = frozenset({"initialize_connection", "terminate_connection"})
MAX_SIZE = 4
MAX_SNAPSHOTS = 3


def request_id() -> str:
    return f"req-{uuid.uuid4()}"


@dataclass
class Op:
    """One request of the plan."""

    method: str
    kwargs: dict[str, Any]
    #: the volumes it touches: it is sent after every earlier op on them
    keys: frozenset[str] = frozenset()
    request_id: str = field(default_factory=request_id)

    @property
    def is_call(self) -> bool:
        return self.method in CALL_METHODS


@dataclass
class VolumeState:
    size: int
    snapshots: set[str] = field(default_factory=set)
    attached_to: str | None = None


@dataclass
class Model:
    """What the backend holds once every step so far is done."""

    volumes: dict[str, VolumeState] = field(default_factory=dict)
    #: snapshot id -> (volume id, size in GiB of the volume when taken)
    snapshots: dict[str, tuple[str, int]] = field(default_factory=dict)

    def status(self, volume_id: str) -> str:
        return "in-use" if self.volumes[volume_id].attached_to else "available"


class Planner:
    """Makes plans against one backend's server, pool ``pool``."""

    def __init__(
        self,
        rng: random.Random,
        server: str,
        *,
        live: tuple[int, int] = (12, 40),
        attach: bool = True,
        online_extend: bool = False,
    ) -> None:
        self.rng = rng
        self.server = server
        self.model = Model()
        self.min_live, self.max_live = live
        self.attach = attach
        self.online_extend = online_extend
        self._clients = 0

    # -- wire objects -------------------------------------------------------

    def volume(self, volume_id: str, **extra: Any) -> dict[str, Any]:
        size = (
            self.model.volumes[volume_id].size
            if volume_id in self.model.volumes
            else extra.pop("size")
        )
        return {"id": volume_id, "size": size, "host": self.server, **extra}

    def snapshot(self, snapshot_id: str) -> dict[str, Any]:
        return {"id": snapshot_id, "volume_id": self.model.snapshots[snapshot_id][0]}

    # -- steps ----------------------------------------------------------------

    def _create(self) -> list[Op]:
        m = self.model
        choices = ["blank", "blank"]
        small = [v for v, st in m.volumes.items() if st.size < MAX_SIZE]
        if small:
            choices.append("clone")
        if m.snapshots:
            choices.append("snapshot")
        kind = self.rng.choice(choices)
        new_id = str(uuid.uuid4())
        keys = {new_id}
        if kind == "clone":
            source = self.rng.choice(small)
            size = m.volumes[source].size + self.rng.randint(0, 1)
            wire = self.volume(new_id, size=size, source_volid=source)
            keys.add(source)
        elif kind == "snapshot":
            snap = self.rng.choice(sorted(m.snapshots))
            source, taken = m.snapshots[snap]
            size = taken + self.rng.randint(0, 1)
            wire = self.volume(new_id, size=size, snapshot_id=snap)
            keys.add(source)
        else:
            size = self.rng.randint(1, 2)
            wire = self.volume(new_id, size=size)
        m.volumes[new_id] = VolumeState(size)
        return [Op("create_volume", {"volume": wire}, frozenset(keys))]

    def _extend(self, volume_id: str) -> list[Op]:
        state = self.model.volumes[volume_id]
        op = Op(
            "extend_volume",
            {"volume": self.volume(volume_id), "new_size": state.size + 1},
            frozenset({volume_id}),
        )
        state.size += 1
        return [op]

    def _snapshot(self, volume_id: str) -> list[Op]:
        snap_id = str(uuid.uuid4())
        state = self.model.volumes[volume_id]
        state.snapshots.add(snap_id)
        self.model.snapshots[snap_id] = (volume_id, state.size)
        wire = {"id": snap_id, "volume_id": volume_id}
        return [Op("create_snapshot", {"snapshot": wire}, frozenset({volume_id}))]

    def _delete_snapshot(self, volume_id: str) -> list[Op]:
        state = self.model.volumes[volume_id]
        snap_id = self.rng.choice(sorted(state.snapshots))
        op = Op(
            "delete_snapshot",
            {"snapshot": self.snapshot(snap_id)},
            frozenset({volume_id}),
        )
        state.snapshots.discard(snap_id)
        del self.model.snapshots[snap_id]
        return [op]

    def _revert(self, volume_id: str) -> list[Op]:
        state = self.model.volumes[volume_id]
        snap_id = self.rng.choice(sorted(state.snapshots))
        return [
            Op(
                "revert_to_snapshot",
                {"volume": self.volume(volume_id), "snapshot": self.snapshot(snap_id)},
                frozenset({volume_id}),
            )
        ]

    def _attach(self, volume_id: str) -> list[Op]:
        self._clients += 1
        client = f"client-{self._clients}"
        self.model.volumes[volume_id].attached_to = client
        return [
            Op(
                "initialize_connection",
                {"volume": self.volume(volume_id), "connector": {"host": client}},
                frozenset({volume_id}),
            )
        ]

    def _detach(self, volume_id: str) -> list[Op]:
        state = self.model.volumes[volume_id]
        op = Op(
            "terminate_connection",
            {
                "volume": self.volume(volume_id),
                "connector": {"host": state.attached_to},
            },
            frozenset({volume_id}),
        )
        state.attached_to = None
        return [op]

    def _delete(self, volume_id: str) -> list[Op]:
        op = Op(
            "delete_volume", {"volume": self.volume(volume_id)}, frozenset({volume_id})
        )
        del self.model.volumes[volume_id]
        return [op]

    def _choices(self, volume_id: str) -> list[tuple[str, int]]:
        """The steps valid for the volume now, with their weights."""
        state = self.model.volumes[volume_id]
        found: list[tuple[str, int]] = []
        if state.size < MAX_SIZE and (self.online_extend or not state.attached_to):
            found.append(("extend", 2))
        if len(state.snapshots) < MAX_SNAPSHOTS:
            found.append(("snapshot", 3))
        if state.snapshots:
            found.append(("delete_snapshot", 2))
        if state.attached_to:
            found.append(("detach", 3))
        else:
            if state.snapshots:
                found.append(("revert", 1))
            if self.attach:
                found.append(("attach", 1))
            if not state.snapshots and len(self.model.volumes) > self.min_live:
                found.append(("delete", 3))
        return found

    def step(self) -> list[Op]:
        """The next step: one operation (or none when nothing fits)."""
        m = self.model
        if len(m.volumes) < self.min_live or (
            len(m.volumes) < self.max_live and self.rng.random() < 0.25
        ):
            return self._create()
        volume_id = self.rng.choice(sorted(m.volumes))
        choices = self._choices(volume_id)
        if not choices:
            return []
        names, weights = zip(*choices, strict=True)
        action = self.rng.choices(names, weights)[0]
        maker = getattr(self, f"_{action}")
        ops: list[Op] = maker(volume_id)
        return ops

    def plan(self, count: int) -> list[Op]:
        """``count`` operations (or a few more) continuing the model."""
        ops: list[Op] = []
        while len(ops) < count:
            ops.extend(self.step())
        return ops

    def settle(self) -> list[Op]:
        """Operations that detach every volume."""
        ops: list[Op] = []
        for volume_id, state in sorted(self.model.volumes.items()):
            if state.attached_to:
                ops.extend(self._detach(volume_id))
        return ops


@dataclass
class CallOutcome:
    op: Op
    #: "ok", "timeout" or the error's class name
    result: str


class Sender(threading.Thread):
    """Sends a plan; records what was sent and how calls ended.

    Casts go out back to back in plan order. A call blocks only the volumes
    it touches: it runs on a thread of its own, and the operations behind it
    on those volumes wait for its answer, while operations on other volumes
    (which commute with it) go on. So the broker always receives a volume's
    operations in plan order.
    """

    def __init__(
        self,
        api: VolumeAPI,
        server: str,
        ops: Iterable[Op],
        *,
        call_timeout: float = 5.0,
        settle_deadline: float = 120.0,
        pace: float = 0.0,
        concurrent_calls: int = 8,
        settled: Callable[[Op], bool] | None = None,
    ) -> None:
        """``settled``: when given, a cast holds back the operations behind
        it on its volumes until ``settled(op)`` says it has finished (as a
        scheduler waits for a status before the next request), instead of
        relying on the order in which one queue delivers them."""
        super().__init__(daemon=True, name="fault-load")
        self.api = api
        self.server = server.partition("#")[0]
        self.ops = list(ops)
        self.call_timeout = call_timeout
        self.settle_deadline = settle_deadline
        self.pace = pace
        self.casts: list[Op] = []
        self.calls: list[CallOutcome] = []
        self.failures: list[str] = []
        self.settled = settled
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._busy: set[str] = set()
        self._halt = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            concurrent_calls, thread_name_prefix="fault-call"
        )

    @property
    def sent(self) -> int:
        with self._lock:
            return len(self.casts) + len(self.calls)

    def halt(self) -> None:
        self._halt.set()
        with self._changed:
            self._changed.notify_all()

    def run(self) -> None:
        pending: list[Op] = []
        try:
            for op in self.ops:
                pending.append(op)
                pending = self._flush(pending)
                if self.pace:
                    time.sleep(self.pace)
            while pending and not self._halt.is_set():
                with self._changed:
                    self._changed.wait(0.2)
                pending = self._flush(pending)
        except Exception as exc:  # recorded; the test asserts on it
            self.failures.append(f"sender stopped: {type(exc).__name__}: {exc}")
        finally:
            self._pool.shutdown(wait=True)

    def _flush(self, pending: list[Op]) -> list[Op]:
        """Send what no call holds back; return what must still wait."""
        with self._lock:
            blocked = set(self._busy)
        waiting = []
        for op in pending:
            if self._halt.is_set() or op.keys & blocked:
                waiting.append(op)
                blocked |= op.keys
            elif op.is_call:
                with self._lock:
                    self._busy |= op.keys
                blocked |= op.keys
                self._pool.submit(self._call, op)
            elif self.settled is not None:
                with self._lock:
                    self._busy |= op.keys
                blocked |= op.keys
                self._cast(op)
                self._pool.submit(self._await_settled, op)
            else:
                self._cast(op)
        return waiting

    def _await_settled(self, op: Op) -> None:
        assert self.settled is not None
        deadline = time.monotonic() + self.settle_deadline
        try:
            while not self.settled(op) and not self._halt.is_set():
                if time.monotonic() > deadline:
                    self.failures.append(f"{op.method} {op.request_id} never finished")
                    return
                time.sleep(0.05)
        finally:
            with self._changed:
                self._busy -= op.keys
                self._changed.notify_all()

    def _cast(self, op: Op) -> None:
        ctxt = {"request_id": op.request_id}
        cctxt = self.api.client.prepare(server=self.server)
        cctxt.cast(ctxt, op.method, **op.kwargs)
        with self._lock:
            self.casts.append(op)

    def _try_call(self, op: Op) -> str:
        ctxt = {"request_id": op.request_id}
        cctxt = self.api.client.prepare(server=self.server, timeout=self.call_timeout)
        try:
            cctxt.call(ctxt, op.method, **op.kwargs)
        except oslo_messaging.MessagingTimeout:
            return "timeout"
        except Exception as exc:
            return type(exc).__name__.removesuffix("_Remote")
        return "ok"

    def _record(self, op: Op, result: str) -> None:
        with self._lock:
            self.calls.append(CallOutcome(op, result))

    def _call(self, op: Op) -> None:
        try:
            result = self._try_call(op)
            self._record(op, result)
            if result == "ok":
                return
            if op.method == "initialize_connection" and result != "timeout":
                # NOTE: refused outright (the worker said why): not attached.
                self.failures.append(f"{op.method} {op.request_id}: {result}")
                return
            self._force_detach(op.kwargs["volume"], op.keys)
        except Exception as exc:
            self.failures.append(f"{op.method} {op.request_id}: {exc!r}")
        finally:
            with self._changed:
                self._busy -= op.keys
                self._changed.notify_all()

    def _force_detach(self, volume: dict[str, Any], keys: frozenset[str]) -> None:
        """Detach until a detach is answered: the attachment is then known."""
        deadline = time.monotonic() + self.settle_deadline
        while time.monotonic() < deadline and not self._halt.is_set():
            op = Op(
                "terminate_connection",
                {"volume": volume, "connector": None, "force": True},
                keys,
            )
            result = self._try_call(op)
            self._record(op, result)
            if result == "ok":
                return
            time.sleep(0.2)
        self.failures.append(f"could not detach volume {volume['id']} by force")


def reconcile(model: Model, sender: Sender) -> None:
    """Correct the model's attachments for the calls that got no answer.

    An attach that was not answered "ok" was followed by a forced detach,
    so its volume ends detached unless a later attach of the plan worked.
    """
    results = {c.op.request_id: c.result for c in sender.calls}
    last: dict[str, Op] = {}
    for op in sender.ops:
        if op.is_call:
            last[op.kwargs["volume"]["id"]] = op
    for volume_id, op in last.items():
        state = model.volumes.get(volume_id)
        if (
            state is not None
            and op.method == "initialize_connection"
            and results.get(op.request_id) != "ok"
        ):
            state.attached_to = None
