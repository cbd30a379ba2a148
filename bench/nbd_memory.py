"""Figure 9: what attached volumes cost in memory. A file worker attaches 1,
then ``attachments`` volumes (TLS-PSK, one qemu-nbd per attachment), and a
client writes and reads 1 MiB through TLS on each export with its key; then
the RSS and PSS (``/proc/PID/smaps_rollup``) of the exports' processes are
summed. PSS divides each shared page among the processes that map it, so it
is what the exports really cost; RSS counts the shared libraries once per
process.

The baseline, in the same repeat: one qemu-storage-daemon serving as many
exports under one key, with the same I/O. It is the design not taken: an NBD
server has one set of TLS credentials and lists all its exports to whoever
completes the handshake, so any attachment's key would reach every volume.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from bench import report
from bench.rounds import Session, session
from bench.startup import file_worker
from bench.summary import ratio, summary
from tests.contract import nbdclient

__all__ = ["run"]

MiB = 1024**2
QSD = "qemu-storage-daemon"
_TLS = {"psk_identity": "0bench" * 4, "psk_key": "5a" * 32}


def _rollup(pid: int) -> tuple[float, float]:
    """RSS and PSS of a process, in MiB."""
    found = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                found[key] = int(rest.split()[0]) / 1024
    return found["Rss"], found["Pss"]


def _sum(pids: list[int]) -> dict[str, float]:
    rss = pss = 0.0
    for pid in pids:
        r, p = _rollup(pid)
        rss, pss = rss + r, pss + p
    return {"rss": rss, "pss": pss, "processes": len(pids)}


def _use(info: dict[str, Any]) -> None:
    """What an attached host does first: write, then read back, over TLS."""
    done = nbdclient.qemu_io(info, "write -P 0x5a 0 1M", "read -P 0x5a 0 1M")
    ok = done.returncode == 0 and "Pattern verification failed" not in done.stdout
    if not ok:
        raise RuntimeError(f"I/O through the export failed: {done.stderr[-300:]}")


# -- volworker: one qemu-nbd per attachment ---------------------------------


def _export_pids(s: Session) -> list[int]:
    nbd_dir = s.server.dir / "state" / s.backend / "nbd"
    return [int(p.read_text()) for p in sorted(nbd_dir.glob("*.pid"))]


def _kill_exports(s: Session) -> None:
    for pid in _export_pids(s):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _attach(s: Session, volume_ids: list[str]) -> None:
    for volume_id in volume_ids:
        info = s.api.initialize_connection(s.volume(volume_id), {"host": "bench"})
        _use(info)


def _volworker(tmp: pathlib.Path, name: str, count: int) -> dict[str, Any]:
    with session(file_worker(tmp, name)) as s:
        try:
            ids = [str(uuid.uuid4()) for _ in range(count)]
            for volume_id in ids:
                s.api.create_volume(s.volume(volume_id))
            s.counter.wait_count("volume.create.end", count, 600)
            _attach(s, ids[:1])
            one = _sum(_export_pids(s))
            _attach(s, ids[1:])
            many = _sum(_export_pids(s))
        finally:
            _kill_exports(s)
    return {"one": one, "many": many}


# -- the baseline: one qemu-storage-daemon for every export -------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _qsd_args(work: pathlib.Path, count: int, port: int) -> list[str]:
    keys = work / "keys"
    keys.mkdir(mode=0o700)
    (keys / "keys.psk").write_text(f"{_TLS['psk_identity']}:{_TLS['psk_key']}\n")
    (keys / "keys.psk").chmod(0o600)
    args = [
        QSD,
        "--daemonize",
        "--pidfile",
        str(work / "qsd.pid"),
        "--object",
        f"tls-creds-psk,id=tls0,endpoint=server,dir={keys}",
        "--nbd-server",
        f"addr.type=inet,addr.host=127.0.0.1,addr.port={port},tls-creds=tls0",
    ]
    for i in range(count):
        image = work / f"volume-{i}"
        with open(image, "wb") as f:
            f.truncate(1024**3)
        args += [
            "--blockdev",
            f"driver=file,filename={image},node-name=v{i}",
            "--export",
            f"type=nbd,id=e{i},node-name=v{i},name=volume-{i},writable=on",
        ]
    return args


@contextlib.contextmanager
def _qsd(work: pathlib.Path, count: int) -> Iterator[tuple[int, int]]:
    """A qemu-storage-daemon serving ``count`` exports: (pid, port)."""
    port = _free_port()
    subprocess.run(_qsd_args(work, count, port), check=True, timeout=120)
    pid = int((work / "qsd.pid").read_text())
    try:
        yield pid, port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _baseline(tmp: pathlib.Path, name: str, count: int) -> dict[str, Any]:
    found = {}
    for label, n in (("one", 1), ("many", count)):
        work = tmp / f"{name}-{label}"
        work.mkdir(parents=True)
        try:
            with _qsd(work, n) as (pid, port):
                for i in range(n):
                    data = {"host": "127.0.0.1", "port": port, "tls": _TLS}
                    data["export_name"] = f"volume-{i}"
                    _use({"driver_volume_type": "nbd", "data": data})
                found[label] = _sum([pid])
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return found


# -- the figure --------------------------------------------------------------


def _rows(found: dict[str, Any], count: int, with_qsd: bool) -> list[report.Row]:
    rows = []
    for key, what in (("pss", "PSS"), ("rss", "RSS")):
        one, many = found[f"nbd {key} 1"], found[f"nbd {key} {count}"]
        rows.append(report.row("9", f"{what} of the exports, 1 attachment", one, "MiB"))
        rows.append(
            report.row(
                "9",
                f"… {count:,} attachments (a qemu-nbd each)",
                many,
                "MiB",
                vs="1 attachment",
                ratio=ratio(many, one),
                target=f"< {count}" if key == "pss" else "",
                met=many["median"] / one["median"] < count if key == "pss" else None,
            )
        )
        per = summary(
            [
                (m - o) / (count - 1)
                for m, o in zip(many["samples"], one["samples"], strict=True)
            ]
        )
        rows.append(
            report.row("9", f"… {what} per attachment beyond the first", per, "MiB")
        )
        if with_qsd:
            q1, qn = found[f"qsd {key} 1"], found[f"qsd {key} {count}"]
            rows.append(
                report.row(
                    "9",
                    f"… baseline: one {QSD}, {count:,} exports under one key",
                    qn,
                    "MiB",
                    vs=f"{QSD}, 1 export",
                    ratio=ratio(qn, q1),
                )
            )
            rows.append(
                report.row(
                    "9",
                    f"… qemu-nbd per attachment against the one daemon, {count:,}",
                    many,
                    "MiB",
                    vs=f"one {QSD}",
                    ratio=ratio(many, qn),
                )
            )
    return rows


def run(
    tmp: pathlib.Path, attachments: int, repeats: int, log: Callable[[str], None]
) -> dict[str, Any]:
    with_qsd = shutil.which(QSD) is not None
    samples: dict[str, list[float]] = {}

    def note(prefix: str, measured: dict[str, Any]) -> None:
        for label, n in (("one", 1), ("many", attachments)):
            for key in ("pss", "rss"):
                samples.setdefault(f"{prefix} {key} {n}", []).append(
                    measured[label][key]
                )

    for r in range(repeats):
        began = time.monotonic()
        note("nbd", _volworker(tmp, f"f9-r{r}", attachments))
        if with_qsd:
            note("qsd", _baseline(tmp, f"f9-r{r}-qsd", attachments))
        log(
            f"fig 9 repeat {r} ({time.monotonic() - began:.0f} s): "
            + ", ".join(f"{k} {v[-1]:.1f}" for k, v in samples.items())
        )
    found = {k: summary(v) for k, v in samples.items()}
    return {
        "attachments": attachments,
        "mib": found,
        "baseline": QSD if with_qsd else f"none ({QSD} is not installed)",
        "rows": _rows(found, attachments, with_qsd),
    }
