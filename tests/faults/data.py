"""Bytes through kill rounds: what each volume and snapshot must hold, and
reading it back.

Before a round, a few detached volumes get a fresh byte pattern written
through their NBD export. The round's plan carries the patterns along in
plan order, which is the order the worker runs a volume's operations in: a
clone, or a volume made from a snapshot, holds its source's bytes; a
snapshot its volume's; a reverted volume its snapshot's; a blank volume
zeros. After the round a sample of what the round made or changed is read
back, volumes through their NBD export (``qemu-io -r``; a volume the load
keeps attached from its file), snapshots from their files in the pool. A
revert marked done without reverting, or an empty clone, shows as a data
mismatch.
"""

from __future__ import annotations

import pathlib
import random
from collections.abc import Iterable
from typing import Any

from tests.contract import nbdclient
from tests.faults.load import Op, Planner
from volworker.rpc.rpcapi import VolumeAPI

__all__ = ["Contents", "DataCheck"]

KiB, GiB = 1024, 1024**3
#: (offset, length) of each volume that gets a pattern: its start and the
#: end of its first GiB (every volume has one), so a copy cut short shows.
REGIONS = ((0, 64 * KiB), (GiB - 64 * KiB, 64 * KiB))
CONNECTOR = {"host": "fault-data"}


class Contents:
    """Object id -> the byte its regions must hold (0: never written)."""

    def __init__(self) -> None:
        self.pattern: dict[str, int] = {}
        #: objects the current round made or changed, and how
        self.touched: dict[str, str] = {}
        self._last = 0

    def fresh(self) -> int:
        """A pattern no object was given lately (never 0)."""
        self._last = self._last % 255 + 1
        return self._last

    def wrote(self, volume_id: str, pattern: int) -> None:
        self.pattern[volume_id] = pattern
        self.touched[volume_id] = "written"

    def follow(self, ops: Iterable[Op]) -> None:
        """Carry the patterns through a plan, in its order."""
        for op in ops:
            self._apply(op)

    def _apply(self, op: Op) -> None:
        kwargs = op.kwargs
        if op.method == "create_volume":
            volume = kwargs["volume"]
            source = volume.get("source_volid") or volume.get("snapshot_id")
            self._set(volume["id"], self.pattern.get(source, 0), _made(volume))
        elif op.method == "create_snapshot":
            snap = kwargs["snapshot"]
            self._set(snap["id"], self.pattern.get(snap["volume_id"], 0), "snapshot")
        elif op.method == "revert_to_snapshot":
            pattern = self.pattern.get(kwargs["snapshot"]["id"], 0)
            self._set(kwargs["volume"]["id"], pattern, "reverted")
        elif op.method in ("delete_volume", "delete_snapshot"):
            gone = kwargs["volume" if op.method == "delete_volume" else "snapshot"]
            self.pattern.pop(gone["id"], None)
            self.touched.pop(gone["id"], None)

    def _set(self, object_id: str, pattern: int, how: str) -> None:
        self.pattern[object_id] = pattern
        self.touched[object_id] = how


def _made(volume: dict[str, Any]) -> str:
    if volume.get("source_volid"):
        return "clone"
    return "from snapshot" if volume.get("snapshot_id") else "blank"


def _qemu_io(info: dict[str, Any], commands: list[str], *, read_only: bool) -> str:
    done = nbdclient.qemu_io(info, *commands, read_only=read_only)
    # A pattern that does not match is a finding, not an error here.
    if "Pattern verification failed" not in done.stdout:
        assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _file_problems(path: pathlib.Path, pattern: int, what: str) -> list[str]:
    problems = []
    with open(path, "rb") as f:
        for offset, length in REGIONS:
            f.seek(offset)
            if f.read(length) != bytes([pattern]) * length:
                problems.append(
                    f"{what}: {length} bytes at {offset} are not {pattern:#04x} "
                    f"(read from {path.name})"
                )
    return problems


class DataCheck:
    """Writes patterns into a round's volumes and reads the sample back."""

    #: volumes written before a round; volumes and snapshots read after it
    WRITES, VOLUMES, SNAPSHOTS = 4, 6, 4

    def __init__(
        self, api: VolumeAPI, planner: Planner, pool: pathlib.Path, rng: random.Random
    ) -> None:
        self.api, self.planner, self.pool, self.rng = api, planner, pool, rng
        self.contents = Contents()
        #: attach and detach calls made, for the tally
        self.calls = 0

    def _detached(self) -> list[str]:
        volumes = self.planner.model.volumes
        return sorted(v for v, state in volumes.items() if not state.attached_to)

    def _through_nbd(self, volume_id: str, commands: list[str], write: bool) -> str:
        wire = self.planner.volume(volume_id)
        info = self.api.initialize_connection(wire, CONNECTOR)
        try:
            return _qemu_io(info, commands, read_only=not write)
        finally:
            self.api.terminate_connection(wire, CONNECTOR)
            self.calls += 2

    def write(self) -> None:
        """Begin a round: a fresh pattern into a few detached volumes."""
        self.contents.touched = {}
        volumes = self._detached()
        for volume_id in self.rng.sample(volumes, min(self.WRITES, len(volumes))):
            pattern = self.contents.fresh()
            commands = [f"write -P {pattern:#x} {o} {n}" for o, n in REGIONS]
            out = self._through_nbd(volume_id, commands, write=True)
            assert out.count("wrote") == len(REGIONS), out
            self.contents.wrote(volume_id, pattern)

    def _volume_problems(self, volume_id: str, pattern: int, how: str) -> list[str]:
        what = f"volume {volume_id} ({how})"
        if self.planner.model.volumes[volume_id].attached_to:
            return _file_problems(self.pool / f"volume-{volume_id}", pattern, what)
        commands = [f"read -P {pattern:#x} {o} {n}" for o, n in REGIONS]
        out = self._through_nbd(volume_id, commands, write=False)
        wrong = out.count("Pattern verification failed")
        if wrong:
            return [f"{what}: {wrong} region(s) are not {pattern:#04x} (through NBD)"]
        assert out.count("read ") == len(REGIONS), out
        return []

    def _snapshot_problems(self, snapshot_id: str, pattern: int) -> list[str]:
        volume_id, _ = self.planner.model.snapshots[snapshot_id]
        folder = self.pool / ".snapshots" / f"volume-{volume_id}"
        path = folder / f"snapshot-{snapshot_id}"
        return _file_problems(path, pattern, f"snapshot {snapshot_id}")

    def read_back(self) -> tuple[int, list[str]]:
        """Read a sample of what the round made or changed; return how
        many objects were read and what did not hold its bytes."""
        model, contents = self.planner.model, self.contents
        touched = sorted(contents.touched.items())
        self.rng.shuffle(touched)
        # reverts and copies first: they are where bytes can go missing
        touched.sort(key=lambda item: item[1] not in ("reverted", "clone"))
        volumes = [(i, how) for i, how in touched if i in model.volumes]
        snapshots = [i for i, _ in touched if i in model.snapshots]
        problems: list[str] = []
        for volume_id, how in volumes[: self.VOLUMES]:
            pattern = contents.pattern[volume_id]
            problems += self._volume_problems(volume_id, pattern, how)
        for snapshot_id in snapshots[: self.SNAPSHOTS]:
            problems += self._snapshot_problems(
                snapshot_id, contents.pattern[snapshot_id]
            )
        checked = min(len(volumes), self.VOLUMES) + min(len(snapshots), self.SNAPSHOTS)
        return checked, problems
