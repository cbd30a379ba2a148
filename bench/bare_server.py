"""The floor: a bare oslo.messaging RPC server doing only the messaging work.

Run as a process (``python -m bench.bare_server --config-file FILE``) on a
config written by :class:`volworker.testing.worker.Worker` (its
``transport_url``, ``host`` and ``volume_topic``), it serves
``Target(topic=<volume_topic>, server=<host>@<backend>)`` with the threading
executor and the default ``executor_thread_pool_size``, and:

- ``create_volume(volume)`` sends ``volume.create.start`` and
  ``volume.create.end`` through a Notifier (``messagingv2``, topic
  ``notifications``, publisher ``volworker.<host>@<backend>``, its own
  notification transport, as the worker has) and nothing else; with
  ``--no-notifications`` it only counts;
- ``get_volume(volume_id)`` answers a record shaped like the worker's;
- ``bench_stats()`` answers how many creates it has done and when (wall
  clock) the first began and the last ended.

It says ``READY=1`` on ``NOTIFY_SOCKET`` once it consumes, and stops on
SIGTERM. :class:`BareServer` starts it like a :class:`Worker`.
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import oslo_messaging
from oslo_config import cfg

from volworker.testing.worker import Worker

__all__ = ["BareServer"]

REPO = pathlib.Path(__file__).resolve().parents[1]


class Endpoint:
    """The contract's create_volume and get_volume, minus the worker."""

    def __init__(self, notifier: Any, server: str) -> None:
        self._notifier = notifier
        self._server = server
        self._lock = threading.Lock()
        self._count = 0
        self._first = 0.0
        self._last = 0.0

    def create_volume(self, ctxt: dict[str, Any], volume: dict[str, Any]) -> None:
        began = time.time()
        if self._notifier is not None:
            self._notifier.info(
                ctxt, "volume.create.start", {**volume, "status": "creating"}
            )
            self._notifier.info(
                ctxt, "volume.create.end", {**volume, "status": "available"}
            )
        with self._lock:
            self._first = self._first or began
            self._count += 1
            self._last = time.time()

    def get_volume(self, ctxt: dict[str, Any], volume_id: str) -> dict[str, Any]:
        now = datetime.datetime.now(datetime.UTC).isoformat()
        return {
            "id": volume_id,
            "name": None,
            "status": "available",
            "size": 1,
            "host": f"{self._server}#fake",
            "volume_type": None,
            "metadata": {},
            "snapshot_id": None,
            "source_volid": None,
            "image_id": None,
            "attachments": [],
            "created_at": now,
            "updated_at": now,
        }

    def bench_stats(self, ctxt: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"count": self._count, "first": self._first, "last": self._last}


def _notify_ready() -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if address:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"READY=1", address)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--backend", default="bare")
    parser.add_argument("--no-notifications", action="store_true")
    args = parser.parse_args()
    # The global CONF, as the worker: oslo.messaging needs it.
    conf = cfg.CONF
    conf.register_opts([cfg.StrOpt("host"), cfg.StrOpt("volume_topic")])
    conf(["--config-file", args.config_file], project="bench")
    server_name = f"{conf.host}@{args.backend}"
    notifier = None
    if not args.no_notifications:
        notifier = oslo_messaging.Notifier(
            oslo_messaging.get_notification_transport(conf),
            publisher_id=f"volworker.{server_name}",
            driver="messagingv2",
            topics=["notifications"],
        )
    server = oslo_messaging.get_rpc_server(
        oslo_messaging.get_rpc_transport(conf),
        oslo_messaging.Target(topic=conf.volume_topic, server=server_name),
        [Endpoint(notifier, server_name)],
        executor="threading",
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    _notify_ready()
    stop.wait()
    server.stop()
    server.wait()
    return 0


class BareServer(Worker):
    """The bare server as a process, driven like a volworker :class:`Worker`
    (same config file, notify socket and signals)."""

    def __init__(
        self, tmp_path: pathlib.Path, *, notifications: bool = True, **kwargs: Any
    ) -> None:
        kwargs.setdefault("name", "bare")
        super().__init__(tmp_path, {"bare": {}}, **kwargs)
        self.notifications = notifications

    #: the module run as the server process
    module = "bench.bare_server"

    def arguments(self) -> list[str]:
        """The process's own arguments, after ``--config-file``."""
        return [] if self.notifications else ["--no-notifications"]

    def start(self, *args: str) -> BareServer:
        notify_path = self.dir / "notify.sock"
        notify_path.unlink(missing_ok=True)
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(notify_path))
        self.notified = []
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(notify_path),
            "PYTHONPATH": str(REPO),
        }
        cmd = [sys.executable, "-m", self.module, "--config-file", str(self.config)]
        cmd += [*self.arguments(), *args]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO
            )
        return self

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM; a baseline that hangs in oslo's stop after its round
        (seen once in 20,000-cast rounds) is killed: what it measured is
        complete, and the run goes on. Says so on stderr."""
        try:
            return super().stop(timeout)
        except subprocess.TimeoutExpired:
            print(
                f"bench: the bare server did not stop within {timeout:.0f}s "
                "of SIGTERM; killed",
                file=sys.stderr,
                flush=True,
            )
            self.kill()
            return 0


if __name__ == "__main__":
    sys.exit(main())
