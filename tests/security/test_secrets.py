"""Where an attachment's key and identity may be: in the reply to
initialize_connection, the worker's database (the attachment's connection
info, from which a restart restores the export) and the export's key file,
0600 in 0700 directories. Nowhere else: not on any process's command line
or in its environment, not in the worker's log at debug level, not in a
notification, a capability report or a record."""

from __future__ import annotations

import json
import os
import pathlib
import stat
from typing import Any

from tests.contract import nbdclient
from tests.security.rig import Rig, wait_until

MiB = 1024**2


def _secrets(infos: list[dict[str, Any]]) -> list[str]:
    return [v for info in infos for v in info["data"]["tls"].values()]


def _processes_showing(secrets: list[str]) -> list[str]:
    """``/proc/<pid>/cmdline`` and ``environ`` of every process we can read
    that hold a secret."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        for part in ("cmdline", "environ"):
            try:
                raw = pathlib.Path(f"/proc/{entry}/{part}").read_bytes()
            except OSError:
                continue
            text = raw.decode(errors="replace")
            found += [f"{entry}/{part}" for s in secrets if s in text]
    return found


def _files_holding(root: pathlib.Path, secrets: list[str]) -> list[str]:
    """Files under ``root`` whose bytes hold a secret."""
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and any(s.encode() in path.read_bytes() for s in secrets)
    )


def _session(rig: Rig) -> tuple[list[str], list[dict[str, Any]]]:
    """Attach three volumes, use one, detach one, restart, attach again:
    the volumes' ids, and the connections (the last one detached)."""
    volumes = [rig.volume() for _ in range(3)]
    infos = [rig.attach(v, host=f"compute-{i}") for i, v in enumerate(volumes)]
    nbdclient.write(infos[0], 0, MiB, 0x11)
    rig.detach(volumes[2], host="compute-2")
    rig.stop()
    rig.start()
    wait_until(lambda: nbdclient.reachable(infos[0]), "served again")
    assert nbdclient.holds(infos[0], 0, MiB, 0x11)
    assert rig.attach(volumes[1], host="compute-1") == infos[1]
    rig.api.publish_service_capabilities()
    rig.reports.wait_for(lambda reports: len(reports) >= 2)
    return [v["id"] for v in volumes], infos


def test_keys_stay_where_they_belong(rig: Rig) -> None:
    volume_ids, infos = _session(rig)
    secrets = _secrets(infos)

    assert _processes_showing(secrets) == []
    log = rig.worker.log()
    assert "driver.initialize_connection took" in log, "debug logging was not on"
    assert [s for s in secrets if s in log] == []
    assert rig.notifications.events("volume.create.end")
    notified = json.dumps(rig.notifications.events())
    assert [s for s in secrets if s in notified] == []
    reports = json.dumps([rig.reports.messages, rig.api.get_capabilities(rig.server)])
    assert [s for s in secrets if s in reports] == []
    records = json.dumps(
        [rig.api.list_volumes(rig.server)]
        + [rig.api.get_volume(rig.server, i) for i in volume_ids]
    )
    assert [s for s in secrets if s in records] == []

    # On disk: the database (it restores exports), and for each live
    # attachment one key file holding its key alone.
    def outside_db(info: dict[str, Any]) -> list[str]:
        held = _files_holding(rig.state_dir, _secrets([info]))
        return [h for h in held if not h.startswith("volworker.sqlite")]

    for info in infos[:2]:
        (key_file,) = outside_db(info)
        assert key_file.endswith(".tls/keys.psk")
        key_path = rig.state_dir / key_file
        assert len(key_path.read_text().splitlines()) == 1
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(key_path.parent.stat().st_mode) == 0o700
    assert outside_db(infos[2]) == []  # detached: its key file is gone
    assert stat.S_IMODE(rig.nbd_dir.stat().st_mode) == 0o700
