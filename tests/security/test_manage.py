"""manage_existing and manage_existing_snapshot with a reference that names an
object the worker manages (``volume-<uuid>``, ``snapshot-<uuid>`` of a known
record): refused, and the victim keeps its data and status. A file nobody
manages is adopted."""

from __future__ import annotations

import pathlib
import uuid

from tests.security.conftest import BACKEND, Setup, new_volume, settled

MiB = 1024 * 1024


def _pool(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "pool"


def test_a_managed_volume_cannot_be_managed_again(
    file_worker: Setup, tmp_path: pathlib.Path
) -> None:
    worker, api, events = file_worker
    server = worker.server(BACKEND)
    victim = new_volume(worker)
    api.create_volume(victim)
    assert settled(api, server, victim["id"])["status"] == "available"
    victim_file = _pool(tmp_path) / f"volume-{victim['id']}"
    with open(victim_file, "r+b") as f:
        f.write(b"tenant A's data")

    thief = new_volume(worker)
    api.manage_existing(thief, {"source-name": f"volume-{victim['id']}"})
    record = settled(api, server, thief["id"])
    assert record["status"] == "error"
    assert "already managed" in record["error"]
    error = events.wait_event("volume.manage_existing.error", thief["id"])
    assert "already managed" in error["payload"]["error"]
    assert api.get_volume(server, victim["id"])["status"] == "available"
    assert victim_file.read_bytes()[:15] == b"tenant A's data"
    assert not (_pool(tmp_path) / f"volume-{thief['id']}").exists()


def test_a_managed_snapshot_cannot_be_managed_again(file_worker: Setup) -> None:
    worker, api, events = file_worker
    server = worker.server(BACKEND)
    volume = new_volume(worker)
    api.create_volume(volume)
    settled(api, server, volume["id"])
    snapshot = {"id": str(uuid.uuid4()), "volume_id": volume["id"]}
    api.create_snapshot(server, snapshot)
    events.wait_event("snapshot.create.end", snapshot["id"])

    thief = {"id": str(uuid.uuid4()), "volume_id": volume["id"]}
    ref = {"source-name": f"snapshot-{snapshot['id']}"}
    api.manage_existing_snapshot(server, thief, ref)
    error = events.wait_event("snapshot.manage_existing.error", thief["id"])
    assert "already managed" in error["payload"]["error"]
    assert api.get_snapshot(server, snapshot["id"])["status"] == "available"


def test_a_file_nobody_manages_is_adopted(
    file_worker: Setup, tmp_path: pathlib.Path
) -> None:
    worker, api, _ = file_worker
    server = worker.server(BACKEND)
    # Named like a volume, but of no record: an orphan, not another's volume.
    orphan = _pool(tmp_path) / f"volume-{uuid.uuid4()}"
    with open(orphan, "wb") as f:
        f.truncate(MiB)
    adopted = new_volume(worker)
    api.manage_existing(adopted, {"source-name": orphan.name})
    assert settled(api, server, adopted["id"])["status"] == "available"
    assert (_pool(tmp_path) / f"volume-{adopted['id']}").exists()
