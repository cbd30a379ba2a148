"""etc/systemd: the units pass systemd's own checks, agree with the worker's
defaults, and their ExecStart line gives systemd what Type=notify needs."""

from __future__ import annotations

import pathlib
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import require_service
from tests.deploy.conftest import ROOT, require_tool
from tests.deploy.units import Unit, UnitProcess, venv_bin
from volworker import opts
from volworker.testing.worker import render_config

SYSTEMD = ROOT / "etc" / "systemd"
SERVICE = SYSTEMD / "volworker@.service"
TARGET = SYSTEMD / "volworker.target"
SYSUSERS = SYSTEMD / "volworker.sysusers"
CONFIG_FILE = "/etc/volworker/volworker.conf"
CONFIG_DIR = "/etc/volworker/volworker.conf.d"
EXECUTABLE = "/usr/bin/volworker"


@pytest.fixture
def unit() -> Unit:
    return Unit(SERVICE)


def _default(name: str) -> Any:
    """The default of a worker option, wherever it is declared."""
    return next(
        o.default for _, group in opts.list_opts() for o in group if o.name == name
    )


# -- systemd's own checks ---------------------------------------------------


def _verify(units_dir: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            require_tool("systemd-analyze", "systemd"),
            "verify",
            "--man=no",
            str(units_dir / "volworker@fake.service"),
            str(units_dir / "volworker.target"),
        ],
        # NOTE: the trailing colon keeps the system's unit directories, where
        # network-online.target and multi-user.target are.
        env={"SYSTEMD_UNIT_PATH": f"{units_dir}:", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _install(tmp_path: pathlib.Path, extra: str = "") -> pathlib.Path:
    """The units as installed, with ExecStart on this environment's
    volworker (verify checks the program exists)."""
    units = tmp_path / "units"
    units.mkdir()
    text = SERVICE.read_text().replace(EXECUTABLE, venv_bin("volworker"))
    (units / SERVICE.name).write_text(
        text.replace("[Service]\n", f"[Service]\n{extra}")
    )
    shutil.copy(TARGET, units / TARGET.name)
    return units


def test_units_pass_systemd_analyze_verify(tmp_path: pathlib.Path) -> None:
    done = _verify(_install(tmp_path))
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), (
        done.stdout + done.stderr
    )


def test_verify_would_report_a_bad_setting(tmp_path: pathlib.Path) -> None:
    """The check above can fail: an unknown setting (like RestartSteps=,
    which this systemd may not have) shows up in verify's output."""
    done = _verify(_install(tmp_path, extra="NoSuchSetting=1\n"))
    assert "NoSuchSetting" in done.stdout + done.stderr


def test_hardening_exposure_stays_low() -> None:
    done = subprocess.run(
        [
            require_tool("systemd-analyze", "systemd"),
            "security",
            "--offline=yes",
            # exposure 0-100 here is 0.0-10.0 in the report; it is 1.5 now
            "--threshold=20",
            str(SERVICE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr


def test_sysusers_creates_the_service_user(tmp_path: pathlib.Path, unit: Unit) -> None:
    (tmp_path / "etc").mkdir()
    done = subprocess.run(
        [
            require_tool("systemd-sysusers", "systemd"),
            f"--root={tmp_path}",
            str(SYSUSERS),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    users = {
        f[0]: f for f in (ln.split(":") for ln in (tmp_path / "etc/passwd").open())
    }
    groups = {ln.split(":")[0] for ln in (tmp_path / "etc/group").open()}
    user = users[unit.get("Service", "User")]
    assert int(user[2]) < 1000  # a system user
    assert user[5] == _default("state_path")
    assert user[6].strip().endswith("nologin")
    assert unit.get("Service", "Group") in groups


# -- the unit agrees with the worker -----------------------------------------


def test_readiness_settings(unit: Unit) -> None:
    assert unit.get("Service", "Type") == "notify"
    assert unit.get("Service", "NotifyAccess") == "main"
    assert unit.get("Service", "KillMode") == "mixed"
    assert unit.get("Service", "Restart") == "on-failure"
    assert unit.seconds("Service", "WatchdogSec") >= 10


def test_start_timeout_covers_setup_retries(unit: Unit) -> None:
    attempts = _default("setup_retry_attempts")
    max_delay = _default("setup_retry_max_delay")
    # tenacity's wait_exponential(multiplier=1): 1, 2, 4 ... up to max_delay
    waits = sum(min(2.0**n, max_delay) for n in range(attempts - 1))
    assert waits == 31
    needed = waits + _default("stats_timeout")
    assert unit.seconds("Service", "TimeoutStartSec") > needed + 15


def test_stop_timeout_covers_graceful_shutdown(unit: Unit) -> None:
    graceful = _default("graceful_shutdown_timeout")
    assert unit.seconds("Service", "TimeoutStopSec") >= graceful + 15
    assert unit.all("Service", "KillSignal") in ([], ["SIGTERM"])


def test_state_and_config_directories(unit: Unit) -> None:
    argv = unit.exec_start("file", {})
    assert argv[0] == EXECUTABLE
    assert argv[argv.index("--config-file") + 1] == CONFIG_FILE
    assert argv[argv.index("--config-dir") + 1] == CONFIG_DIR
    assert argv[argv.index("--backend") + 1] == "file"
    # systemd creates the --config-dir that oslo.config insists on
    assert "/etc/" + unit.get("Service", "ConfigurationDirectory") == CONFIG_DIR
    state_path = _default("state_path")
    assert "/var/lib/" + unit.get("Service", "StateDirectory") == state_path
    assert unit.get("Service", "ProtectSystem") == "strict"
    assert unit.all("Service", "DynamicUser") == []


def test_backends_belong_to_the_target(unit: Unit) -> None:
    assert unit.words("Unit", "PartOf") == ["volworker.target"]
    assert unit.words("Install", "WantedBy") == ["volworker.target"]
    assert Unit(TARGET).words("Install", "WantedBy") == ["multi-user.target"]
    # the stop is ordered before the services the worker talks to
    assert "rabbitmq-server.service" in unit.words("Unit", "After")


# -- ExecStart, run as systemd would run it -----------------------------------


@pytest.fixture
def processes() -> Iterator[Callable[..., UnitProcess]]:
    made: list[UnitProcess] = []

    def make(*args: Any, **kwargs: Any) -> UnitProcess:
        require_service("rabbitmq", 5672)
        proc = UnitProcess(*args, **kwargs)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.close()


def _argv(unit: Unit, backend_name: str, proc: UnitProcess) -> list[str]:
    conf_d = proc.dir / "volworker.conf.d"
    conf_d.mkdir(exist_ok=True)
    argv = unit.exec_start(
        backend_name,
        {
            EXECUTABLE: venv_bin("volworker"),
            CONFIG_FILE: str(proc.config),
            CONFIG_DIR: str(conf_d),
        },
    )
    assert not [a for a in argv if a.startswith(("/etc/", "/usr/"))], argv
    return argv


def _wait_log(proc: UnitProcess, text: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while text not in proc.log():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_ready_after_setup_then_clean_stop(
    tmp_path: pathlib.Path, unit: Unit, processes: Callable[..., UnitProcess]
) -> None:
    proc = processes(tmp_path, {"b1": {"volume_driver": "fake"}})
    argv = _argv(unit, "b1", proc)
    # NOTE: only the --config-dir says to fail setup twice: READY after the
    # retries also shows the directory is read.
    (proc.dir / "volworker.conf.d" / "50-retries.conf").write_text(
        render_config(
            {
                "DEFAULT": {"setup_retry_max_delay": 0.2},
                "b1": {"fake_setup_transient_failures": 2},
            }
        )
    )
    proc.launch(argv, unit.environment()).wait_ready(60)
    assert proc.log().count("Backend b1 is not available yet") == 2
    assert "STATUS=Serving b1" in proc.notified
    # the log reaches journald as it is written, not at exit
    assert _wait_log(proc, "volworker ready: Serving b1"), proc.log()
    assert not proc.exited()

    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.wait(unit.seconds("Service", "TimeoutStopSec")) == 0, proc.log()
    assert time.monotonic() - started < unit.seconds("Service", "TimeoutStopSec")
    assert "STOPPING=1" in proc.notified


def test_missing_config_dir_fails_the_start(
    tmp_path: pathlib.Path, unit: Unit, processes: Callable[..., UnitProcess]
) -> None:
    """Why the unit has ConfigurationDirectory=: oslo.config refuses a
    --config-dir that does not exist."""
    proc = processes(tmp_path, {"b1": {"volume_driver": "fake"}})
    argv = _argv(unit, "b1", proc)
    (proc.dir / "volworker.conf.d").rmdir()
    proc.launch(argv, unit.environment())
    assert proc.wait(60) != 0
    assert "READY=1" not in proc.notified
    assert "volworker.conf.d" in proc.log()


def test_watchdog_pings_once_ready(
    tmp_path: pathlib.Path, unit: Unit, processes: Callable[..., UnitProcess]
) -> None:
    proc = processes(tmp_path, {"b1": {"volume_driver": "fake"}})
    # NOTE: systemd passes WatchdogSec= as WATCHDOG_USEC; 1 s keeps it short.
    env = {**unit.environment(), "WATCHDOG_USEC": "1000000"}
    proc.launch(_argv(unit, "b1", proc), env).wait_ready(60)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        proc._read_notify(0.1)
    pings = proc.notified.count("WATCHDOG=1")
    assert 3 <= pings <= 8, proc.notified  # every 0.5 s
    assert proc.notified.index("READY=1") < proc.notified.index("WATCHDOG=1")
    proc.signal(signal.SIGTERM)
    assert proc.wait(60) == 0


def test_target_starts_backends_of_one_config_together(
    tmp_path: pathlib.Path, unit: Unit, processes: Callable[..., UnitProcess]
) -> None:
    """volworker.target starts every enabled instance at once: they share one
    config and one fresh state_path (database, locks) and all get ready."""
    host, topic = f"h{uuid.uuid4().hex[:8]}", f"vwtest-{uuid.uuid4().hex[:10]}"
    backends = {
        "b1": {"volume_driver": "fake"},
        "b2": {"volume_driver": "fake"},
        "b3": {"volume_driver": "file", "file_pools": f"p:{tmp_path}/pool"},
    }
    shared = {"state_path": tmp_path / "state"}
    procs = {
        name: processes(
            tmp_path, backends, host=host, topic=topic, defaults=shared, name=name
        )
        for name in backends
    }
    for name, proc in procs.items():
        proc.launch(_argv(unit, name, proc), unit.environment())
    for name, proc in procs.items():
        proc.wait_ready(60)
        assert f"STATUS=Serving {name}" in proc.notified
    for proc in procs.values():
        proc.signal(signal.SIGTERM)
    for proc in procs.values():
        assert proc.wait(60) == 0, proc.log()
    assert (tmp_path / "pool").is_dir()
