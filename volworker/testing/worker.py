"""A real ``volworker`` process for tests: its config, its notify socket, its
signals and its log."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import kombu

from volworker.testing.listen import BROKER as BROKER_URL
from volworker.testing.listen import VHOST

RABBIT_URL = "rabbit://guest:guest@127.0.0.1:5672/" + VHOST
#: ``rpc_intake`` of every worker a test starts, unless the test sets it:
#: runs a suite on the other intake (``VOLWORKER_TEST_RPC_INTAKE=oslo``).
RPC_INTAKE = os.environ.get("VOLWORKER_TEST_RPC_INTAKE")


def render_config(sections: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for name, options in sections.items():
        lines.append(f"[{name}]")
        for key, value in options.items():
            if isinstance(value, list | tuple):
                value = ",".join(str(v) for v in value)
            lines.append(f"{key} = {value}")
        lines.append("")
    return "\n".join(lines)


class Worker:
    """One volworker process under test.

    ``topic`` is unique per worker so tests running side by side (or a
    stale queue of an earlier run) never see each other's messages.
    """

    def __init__(
        self,
        tmp_path: pathlib.Path,
        backends: dict[str, dict[str, Any]],
        *,
        host: str | None = None,
        topic: str | None = None,
        defaults: dict[str, Any] | None = None,
        extra: dict[str, dict[str, Any]] | None = None,
        name: str = "worker",
    ) -> None:
        self.dir = tmp_path / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = host or f"h{uuid.uuid4().hex[:8]}"
        self.topic = topic or f"vwtest-{uuid.uuid4().hex[:10]}"
        self.backends = backends
        default = {
            "transport_url": RABBIT_URL,
            "host": self.host,
            "state_path": self.dir / "state",
            "volume_topic": self.topic,
            "enabled_backends": list(backends),
            "graceful_shutdown_timeout": 20,
            **({"rpc_intake": RPC_INTAKE} if RPC_INTAKE else {}),
            **(defaults or {}),
        }
        self.config = self.dir / "volworker.conf"
        self.config.write_text(
            render_config({"DEFAULT": default, **backends, **(extra or {})})
        )
        self.log_path = self.dir / "volworker.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._notify: socket.socket | None = None
        self.notified: list[str] = []

    def server(self, backend: str) -> str:
        return f"{self.host}@{backend}"

    def start(self, *args: str) -> Worker:
        notify_path = self.dir / "notify.sock"
        notify_path.unlink(missing_ok=True)
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(notify_path))
        self.notified = []
        env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "PYTHONUNBUFFERED": "1"}
        cmd = [
            sys.executable,
            "-m",
            "volworker.cmd.worker",
            "--config-file",
            str(self.config),
            *args,
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        return self

    def _read_notify(self, timeout: float) -> str | None:
        assert self._notify is not None
        self._notify.settimeout(timeout)
        try:
            data = self._notify.recv(4096).decode()
        except TimeoutError:
            return None
        self.notified.extend(data.splitlines())
        return data

    def wait_notified(self, line: str, timeout: float = 30) -> bool:
        """Wait for a notify line (e.g. READY=1); False if the process ends
        or the time runs out first."""
        deadline = time.monotonic() + timeout
        while line not in self.notified:
            if time.monotonic() > deadline or self.exited():
                # one last look: the datagram may have come just before
                self._read_notify(0.1)
                return line in self.notified
            self._read_notify(0.2)
        return True

    def wait_ready(self, timeout: float = 30) -> Worker:
        if not self.wait_notified("READY=1", timeout):
            raise AssertionError(
                f"volworker sent no READY=1 (exit {self.returncode()}); "
                f"log:\n{self.log()}"
            )
        return self

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        """Wait for the exit code; read what it notified until then."""
        assert self.proc is not None
        code = self.proc.wait(timeout)
        while self._notify is not None and self._read_notify(0.05):
            pass
        return code

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait for the exit code."""
        if self.proc is None or self.exited():
            return self.returncode() or 0
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and not self.exited():
            self.proc.kill()
            self.proc.wait(30)

    def close(self) -> None:
        self.kill()
        if self._notify is not None:
            self._notify.close()
            self._notify = None
        self.delete_queues()

    def delete_queues(self) -> None:
        """Drop the queues this worker declared (they outlive it on purpose:
        requests wait in them while a worker is down)."""
        names = [self.topic, *(f"{self.topic}.{self.server(b)}" for b in self.backends)]
        # Cleanup only; the broker may be away (a fault test stopped it).
        with contextlib.suppress(Exception), kombu.Connection(BROKER_URL) as conn:
            channel = conn.default_channel
            for name in names:
                channel.queue_delete(name)

    def log(self) -> str:
        return (
            self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        )
