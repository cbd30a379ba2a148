"""devstack/: the plugin, run phase by phase on stand-ins for devstack's
functions (tests/deploy/devstack_harness.sh), writes a config the worker
takes and asks devstack for one ready process per backend."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shlex
import shutil
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import require_service
from tests.deploy.conftest import ROOT, require_tool
from tests.deploy.options import read_config, unknown_options
from tests.deploy.units import Unit, UnitProcess, venv_bin

HARNESS = ROOT / "tests" / "deploy" / "devstack_harness.sh"
DEVSTACK_FILES = [
    ROOT / "devstack" / "plugin.sh",
    ROOT / "devstack" / "settings",
    ROOT / "devstack" / "lib" / "volworker",
]
STACK = ("stack/install", "stack/post-config", "stack/extra")
BACKENDS = {"VOLWORKER_BACKENDS": "file,fast:file,test:fake"}
POOLS = {"VOLWORKER_POOLS": "default,gold"}


class Devstack:
    """One devstack host: a scratch tree, the recorded calls, the config."""

    def __init__(self, work: pathlib.Path) -> None:
        self.work = work
        self.calls_path = work / "calls.log"
        self.conf_dir = work / "etc" / "volworker"
        self.conf = self.conf_dir / "volworker.conf"
        self.data = work / "opt" / "stack" / "data"
        self.state = self.data / "volworker"
        self.systemd = work / "systemd"

    def run(self, *runs: str, **env: str) -> subprocess.CompletedProcess[str]:
        self.calls_path.unlink(missing_ok=True)
        full_env = {
            "PATH": os.environ["PATH"],
            "HARNESS_WORK": str(self.work),
            "HARNESS_ROOT": str(ROOT),
            "HARNESS_BIN": os.path.dirname(venv_bin("volworker")),
            "HARNESS_CALLS": str(self.calls_path),
            # local.conf
            "VOLWORKER_CONF_DIR": str(self.conf_dir),
            **env,
        }
        return subprocess.run(
            ["bash", str(HARNESS), *runs],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *runs: str, **env: str) -> None:
        done = self.run(*runs, **env)
        assert done.returncode == 0, done.stdout + done.stderr

    def calls(self, name: str | None = None) -> list[list[str]]:
        if not self.calls_path.exists():
            return []
        rows = [ln.split("\t") for ln in self.calls_path.read_text().splitlines()]
        return [r for r in rows if name is None or r[0] == name]

    def dropin(self, backend: str) -> pathlib.Path:
        return self.systemd / f"devstack@volworker-{backend}.service.d/volworker.conf"


@pytest.fixture
def devstack(tmp_path: pathlib.Path) -> Devstack:
    return Devstack(tmp_path / "host")


# -- the files ----------------------------------------------------------------


@pytest.mark.parametrize("path", [*DEVSTACK_FILES, HARNESS], ids=lambda p: p.name)
def test_bash_parses(path: pathlib.Path) -> None:
    done = subprocess.run(
        ["bash", "-n", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_shellcheck_clean() -> None:
    shellcheck = require_tool("shellcheck", "shellcheck")
    files = [str(p.relative_to(ROOT)) for p in [*DEVSTACK_FILES, HARNESS]]
    done = subprocess.run(
        [shellcheck, "-s", "bash", "-x", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_packages_for_devstack_to_install() -> None:
    debs = (ROOT / "devstack/files/debs/volworker").read_text().split()
    rpms = (ROOT / "devstack/files/rpms/volworker").read_text().split()
    assert "qemu-utils" in debs and "qemu-img" in rpms


# -- the phases -------------------------------------------------------------


def test_stack_installs_configures_and_starts_each_backend(
    devstack: Devstack,
) -> None:
    devstack.ok(*STACK, **BACKENDS, **POOLS)
    plugin_dir = str(devstack.work / "opt" / "stack" / "volworker")
    assert devstack.calls("setup_develop") == [["setup_develop", plugin_dir]]
    volworker = venv_bin("volworker")
    assert devstack.calls("run_process") == [
        [
            "run_process",
            f"volworker-{name}",
            f"{volworker} --config-file {devstack.conf} --backend {name}",
        ]
        for name in ("file", "fast", "test")
    ]
    assert devstack.calls("stop_process") == []

    conf = read_config(devstack.conf)
    assert conf.get("DEFAULT", "transport_url") == (
        "rabbit://guest:guest@127.0.0.1:5672/"
    )
    assert conf.get("DEFAULT", "state_path") == str(devstack.state)
    assert conf.get("DEFAULT", "enabled_backends") == "file,fast,test"
    # devstack's services keep the exchange transient: the worker matches.
    assert conf.get("oslo_messaging_rabbit", "amqp_durable_queues") == "False"
    pools = devstack.state / "pools"
    for name in ("file", "fast"):
        assert dict(conf.items(name)) == {
            "volume_driver": "file",
            "volume_backend_name": name,
            "file_pools": f"default:{pools}/{name}/default,gold:{pools}/{name}/gold",
            "nbd_host": "127.0.0.1",
            "nbd_tls": "psk",
        }
        assert (pools / name / "default").is_dir() and (pools / name / "gold").is_dir()
    assert conf.get("test", "volume_driver") == "fake"
    assert conf.get("test", "fake_pools") == "default,gold"
    assert unknown_options(devstack.conf) == []


def test_each_backend_waits_for_ready(devstack: Devstack) -> None:
    """devstack's units are Type=simple; a drop-in makes each Type=notify,
    so run_process's systemctl start returns only once the worker is ready."""
    devstack.ok(*STACK, **BACKENDS)
    for name in ("file", "fast", "test"):
        dropin = Unit(devstack.dropin(name))
        assert dropin.get("Service", "Type") == "notify"
        assert dropin.get("Service", "NotifyAccess") == "main"
        assert dropin.seconds("Service", "TimeoutStartSec") >= 60
        assert dropin.get("Service", "KillMode") == "mixed"
    # per backend its own metrics port, as the backends share one config
    assert [
        Unit(devstack.dropin(name)).get("Service", "Environment")
        for name in ("file", "fast", "test")
    ] == [f"OS_METRICS__LISTEN=127.0.0.1:{port}" for port in (9669, 9670, 9671)]
    # per backend: the drop-in is written, then started, then checked
    keys = [
        " ".join(c[:2]) if c[0] in ("sudo", "systemctl") else c[0]
        for c in devstack.calls()
    ]
    per_backend = ["sudo mkdir", "sudo tee", "run_process"]
    per_backend += ["systemctl start", "systemctl show", "systemctl is-active"]
    assert keys[keys.index("sudo mkdir") :] == per_backend * 3


def test_metrics_can_be_turned_off(devstack: Devstack) -> None:
    devstack.ok(*STACK, **BACKENDS, VOLWORKER_METRICS_PORT="")
    for name in ("file", "fast", "test"):
        assert Unit(devstack.dropin(name)).all("Service", "Environment") == []


def test_dropin_passes_systemd_analyze_verify(
    devstack: Devstack, tmp_path: pathlib.Path
) -> None:
    """The drop-in on a unit like the one devstack's run_process writes."""
    analyze = require_tool("systemd-analyze", "systemd")
    devstack.ok(*STACK)
    command = devstack.calls("run_process")[0][2]
    units = tmp_path / "units"
    units.mkdir()
    unit = units / "devstack@volworker-file.service"
    unit.write_text(
        "[Unit]\nDescription=Devstack devstack@volworker-file.service\n"
        "[Service]\nUser=stack\n"
        f"ExecStart={command}\nKillMode=process\nTimeoutStopSec=300\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    shutil.copytree(devstack.dropin("file").parent, units / f"{unit.name}.d")
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        env={"SYSTEMD_UNIT_PATH": f"{units}:", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), (
        done.stdout + done.stderr
    )


@pytest.fixture
def processes() -> Iterator[Callable[..., UnitProcess]]:
    made: list[UnitProcess] = []

    def make(*args: Any, **kwargs: Any) -> UnitProcess:
        proc = UnitProcess(*args, **kwargs)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.close()


def test_started_commands_serve_their_backends(
    devstack: Devstack,
    tmp_path: pathlib.Path,
    processes: Callable[..., UnitProcess],
) -> None:
    """What run_process was asked to run, run for real with a notify socket
    as the drop-in's Type=notify has systemd do: every backend gets ready
    with the status the plugin checks for."""
    require_service("rabbitmq", 5672)
    base = _free_ports(3)
    devstack.ok(*STACK, **BACKENDS, **POOLS, VOLWORKER_METRICS_PORT=str(base))
    started = {}
    for _, service, command in devstack.calls("run_process"):
        name = service.removeprefix("volworker-")
        proc = processes(tmp_path, {}, name=service)
        # NOTE: a topic and host of their own keep the test off the broker's
        # real volworker queues; the environment outranks the config file.
        env = {"OS_DEFAULT__HOST": proc.host, "OS_DEFAULT__VOLUME_TOPIC": proc.topic}
        for setting in Unit(devstack.dropin(name)).all("Service", "Environment"):
            key, _, value = setting.partition("=")
            env[key] = value
        started[name] = proc.launch(shlex.split(command), env)
    for index, (name, proc) in enumerate(started.items()):
        proc.wait_ready(60)
        status = [n for n in proc.notified if n.startswith("STATUS=")]
        # the last status before READY says what it serves
        assert status and status[-1].startswith(f"STATUS=Serving {name}"), status
        # and its own metrics port answers for its backend
        url = f"http://127.0.0.1:{base + index}"
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as health:
            assert health.status == 200
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as metrics:
            assert f'backend="{name}"' in metrics.read().decode()
    for proc in started.values():
        proc.signal(signal.SIGTERM)
    for proc in started.values():
        assert proc.wait(60) == 0, proc.log()


def _free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports free on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65535:
            continue
        try:
            with contextlib.ExitStack() as held:
                for port in range(base, base + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError(f"no {count} consecutive free ports")


def test_unstack_stops_each_backend(devstack: Devstack) -> None:
    devstack.ok(*STACK, **BACKENDS)
    devstack.ok("unstack", **BACKENDS)
    assert devstack.calls("stop_process") == [
        ["stop_process", f"volworker-{name}"] for name in ("file", "fast", "test")
    ]
    assert devstack.calls("run_process") == []
    assert devstack.conf.exists() and devstack.state.exists()


def test_clean_removes_state_config_and_dropins(devstack: Devstack) -> None:
    devstack.ok(*STACK, **BACKENDS)
    (devstack.state / "pools" / "file" / "default" / "volume-x").write_text("x")
    # clean.sh runs unstack.sh first
    devstack.ok("unstack", **BACKENDS)
    devstack.ok("clean", **BACKENDS)
    assert not devstack.state.exists()
    assert not devstack.conf.exists()
    assert not list(devstack.systemd.glob("devstack@volworker-*"))


def test_disabled_service_does_nothing(devstack: Devstack) -> None:
    devstack.ok(*STACK, "unstack", "clean", HARNESS_DISABLED="volworker")
    assert [c[0] for c in devstack.calls()] == ["define_plugin"]
    assert not devstack.conf.exists()


def test_backend_not_ready_stops_stack_with_its_name(devstack: Devstack) -> None:
    done = devstack.run(
        *STACK, **BACKENDS, HARNESS_NOT_READY="devstack@volworker-fast.service"
    )
    assert done.returncode != 0
    assert "volworker backend fast is not ready" in done.stderr
    assert "journalctl -u devstack@volworker-fast.service" in done.stderr
    # the backends before it started; none after it
    assert [c[1] for c in devstack.calls("run_process")] == [
        "volworker-file",
        "volworker-fast",
    ]


@pytest.mark.parametrize(
    ("backends", "error"),
    [
        ("file,file", "backend file is listed twice"),
        ("a.b", "'a.b:file' is not NAME[:DRIVER]"),
        ("nodriver:", "'nodriver:' is not NAME[:DRIVER]"),
        (",", "VOLWORKER_BACKENDS is empty"),
    ],
)
def test_bad_backends_are_refused(
    devstack: Devstack, backends: str, error: str
) -> None:
    done = devstack.run(*STACK, VOLWORKER_BACKENDS=backends)
    assert done.returncode != 0
    assert error in done.stderr, done.stderr
    assert devstack.calls("run_process") == []
