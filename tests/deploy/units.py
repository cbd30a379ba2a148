"""Reading systemd unit files, and running a unit's command line the way
systemd would, but under the test's control."""

from __future__ import annotations

import os
import pathlib
import re
import shlex
import socket
import subprocess
import sys
from typing import Any

from volworker.testing.worker import Worker

#: the environment systemd gives a system service before the unit's own
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(min|ms|us|s|h)?$")
_UNITS = {None: 1.0, "s": 1.0, "min": 60.0, "h": 3600.0, "ms": 1e-3, "us": 1e-6}


class Unit:
    """The settings of one unit file; a key may repeat (Environment=)."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.sections: dict[str, list[tuple[str, str]]] = {}
        section: list[tuple[str, str]] = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = self.sections.setdefault(line[1:-1], [])
                continue
            key, sep, value = line.partition("=")
            assert sep, f"{path}: not a setting: {raw!r}"
            assert not value.endswith("\\"), f"{path}: continued lines: {raw!r}"
            section.append((key.strip(), value.strip()))

    def all(self, section: str, key: str) -> list[str]:
        return [v for k, v in self.sections.get(section, []) if k == key]

    def get(self, section: str, key: str) -> str:
        values = self.all(section, key)
        assert len(values) == 1, f"{self.path}: [{section}] {key}= set {values}"
        return values[0]

    def words(self, section: str, key: str) -> list[str]:
        return [w for v in self.all(section, key) for w in v.split()]

    def seconds(self, section: str, key: str) -> float:
        """A time span setting (``90s``, ``15min``, ``2``) in seconds."""
        value = self.get(section, key)
        match = _DURATION.match(value)
        assert match, f"{self.path}: [{section}] {key}={value} is not a duration"
        return float(match.group(1)) * _UNITS[match.group(2)]

    def environment(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for value in self.all("Service", "Environment"):
            for item in shlex.split(value):
                name, _, val = item.partition("=")
                env[name] = val
        return env

    def exec_start(self, instance: str, paths: dict[str, str]) -> list[str]:
        """ExecStart= as argv: ``%i`` is ``instance``, and each key of
        ``paths`` (a path of the installed system) is replaced by its value."""
        argv = shlex.split(self.get("Service", "ExecStart"))
        assert argv[0].startswith("/"), "ExecStart must name an absolute path"
        return [paths.get(arg, arg).replace("%i", instance) for arg in argv]


class UnitProcess(Worker):
    """A worker started from a unit's ExecStart line with the environment
    systemd would give it, notifying the test's own socket."""

    def launch(
        self, argv: list[str], env: dict[str, str], cwd: pathlib.Path | None = None
    ) -> UnitProcess:
        notify_path = self.dir / "notify.sock"
        notify_path.unlink(missing_ok=True)
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(notify_path))
        self.notified = []
        home = self.dir / "home"
        home.mkdir(exist_ok=True)
        full_env: dict[str, Any] = {
            "PATH": SYSTEMD_PATH,
            "LANG": "C.UTF-8",
            "HOME": str(home),
            **env,
            "NOTIFY_SOCKET": str(notify_path),
        }
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=cwd or "/",
            )
        return self


def venv_bin(name: str) -> str:
    """The path of a console script of the environment running the tests."""
    script = pathlib.Path(os.path.abspath(sys.executable)).with_name(name)
    assert script.exists(), f"{script} is missing: is volworker installed here?"
    return str(script)
