"""A private RabbitMQ node for tests that stop the broker.

The machine's shared broker (127.0.0.1:5672) serves other tests at the same
time and is never stopped. This node has a name, ports, an Erlang cookie,
a database and logs of its own, all under the test's directory; it runs as
the current user (``/usr/lib/rabbitmq/bin/rabbitmq-server``, not the
distribution's wrapper, which switches to the rabbitmq user and its shared
cookie).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid

__all__ = ["PrivateBroker", "missing_tools"]

SBIN = pathlib.Path("/usr/lib/rabbitmq/bin")
START_TIMEOUT = 60.0


def _tool(name: str) -> str | None:
    path = SBIN / name
    return str(path) if path.exists() else shutil.which(name)


def missing_tools() -> list[str]:
    return [t for t in ("rabbitmq-server", "rabbitmqctl") if _tool(t) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateBroker:
    """One RabbitMQ node under ``base``."""

    def __init__(self, base: pathlib.Path) -> None:
        self.base = base
        self.node = f"vwtest-{uuid.uuid4().hex[:8]}@localhost"
        self.port = _free_port()
        self.dist_port = _free_port()
        self.home = base / "home"
        self.pid_file = base / "rabbitmq.pid"

    @property
    def url(self) -> str:
        return f"rabbit://guest:guest@127.0.0.1:{self.port}/"

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        b = self.base
        return {
            **os.environ,
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(b / "mnesia"),
            "RABBITMQ_LOG_BASE": str(b / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(b / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(b / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(b / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(b / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        tool = _tool("rabbitmqctl")
        assert tool is not None
        return subprocess.run(
            [tool, "-n", self.node, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def config(self) -> str:
        """The node's rabbitmq.conf: one plain AMQP listener on ``port``."""
        return f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n"

    def start(self) -> PrivateBroker:
        """Start the node (again, after shutdown(): its queues come back
        from its database)."""
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.unlink(missing_ok=True)
        cookie.write_text(secrets.token_hex(20).upper())
        cookie.chmod(0o400)
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq.conf").write_text(self.config())
        (self.base / "rabbitmq-env.conf").write_text("")
        server = _tool("rabbitmq-server")
        assert server is not None
        subprocess.run(
            [server, "-detached"],
            env=self._env(),
            cwd=self.base,
            capture_output=True,
            timeout=60,
            check=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            done = self.ctl("await_startup", "--timeout", "5", timeout=30)
            if done.returncode == 0:
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"private RabbitMQ {self.node} did not start: {done.stderr}"
                )
            time.sleep(0.5)

    def stop_app(self) -> None:
        done = self.ctl("stop_app")
        assert done.returncode == 0, done.stderr

    def start_app(self) -> None:
        done = self.ctl("start_app")
        assert done.returncode == 0, done.stderr

    def pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(self.pid_file.read_text().strip())
        return None

    def shutdown(self) -> None:
        """Stop the node; kill its pid if it does not stop."""
        pid = self.pid()
        done = self.ctl("shutdown", timeout=60)
        if done.returncode == 0 or pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
