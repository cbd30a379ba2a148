"""volworker@.service under a real systemd: a container (systemd-nspawn)
boots this machine's systemd with the units, the sysusers file and a file
backend installed as the README says, and tests/deploy/systemd_boot.sh drives
them from inside. Every line of hardening applies, so this shows the worker,
SQLite, tooz and qemu-nbd all work in the sandbox."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import uuid

import pytest

from tests.conftest import require_root, require_service
from tests.deploy.conftest import ROOT, require_tool
from tests.deploy.units import Unit
from volworker.testing.worker import RABBIT_URL, render_config

SYSTEMD = ROOT / "etc" / "systemd"
BOOT_TIMEOUT = 300


def _python_paths() -> list[str]:
    """What the container needs to see to run this environment's volworker."""
    paths = {str(ROOT), sys.prefix, sys.base_prefix}
    real = os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))
    paths.add(real)
    return sorted(p for p in paths if not p.startswith("/usr"))


def _rootfs(root: pathlib.Path, topic: str, host: str) -> None:
    """A root of this machine's /etc (nothing enabled) over its /usr."""
    root.mkdir()
    for name in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink(f"/{name}"):
            (root / name).symlink_to(os.readlink(f"/{name}"))
    subprocess.run(["cp", "-a", "/etc", str(root / "etc")], check=True)
    for wants in (root / "etc/systemd/system").glob("*.wants"):
        shutil.rmtree(wants)
    # NOTE: a machine id of its own; systemd makes one up at boot.
    (root / "etc/machine-id").write_text("")
    # nspawn looks for os-release before /usr is mounted over this
    (root / "usr/lib").mkdir(parents=True)
    shutil.copy("/usr/lib/os-release", root / "usr/lib/os-release")
    for name in ("var/lib", "var/log", "var/tmp", "results", "srv", "root", "home"):
        (root / name).mkdir(parents=True, exist_ok=True)

    etc = root / "etc"
    units = etc / "systemd/system"
    for unit in ("volworker@.service", "volworker.target"):
        shutil.copy(SYSTEMD / unit, units / unit)
    (etc / "sysusers.d").mkdir(exist_ok=True)
    shutil.copy(SYSTEMD / "volworker.sysusers", etc / "sysusers.d/volworker.conf")
    (etc / "volworker").mkdir(exist_ok=True)
    (etc / "volworker/volworker.conf").write_text(
        render_config(
            {
                "DEFAULT": {
                    "transport_url": RABBIT_URL,
                    "host": host,
                    "volume_topic": topic,
                    "enabled_backends": "file",
                },
                "file": {"volume_driver": "file", "nbd_host": "127.0.0.1"},
            }
        )
    )
    _test_dropin(units)
    (units / "vwtest.service").write_text(
        "[Unit]\nDescription=volworker boot test\nAfter=multi-user.target\n"
        "[Service]\nType=oneshot\n"
        f"ExecStart=/bin/bash {ROOT}/tests/deploy/systemd_boot.sh "
        f"{sys.executable} {ROOT}\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    subprocess.run(
        [
            "systemctl",
            f"--root={root}",
            "enable",
            "volworker@file.service",
            "volworker.target",
            "vwtest.service",
        ],
        check=True,
        capture_output=True,
    )


#: Where the unit's sandbox hides files: ProtectHome= and PrivateTmp=.
HOME_DIRS = ("/root/", "/home/")
TMP_DIRS = ("/tmp/", "/var/tmp/")


def _test_dropin(units: pathlib.Path) -> None:
    """The one change to the unit: volworker is this environment's, not
    /usr/bin's. A checkout or a Python in a home or a temporary directory is
    hidden by the sandbox (ProtectHome=, PrivateTmp=), so it is bound into
    the service, read-only, as it is into the container."""
    argv = Unit(SYSTEMD / "volworker@.service").get("Service", "ExecStart")
    lines = [
        "[Service]",
        "ExecStart=",
        "ExecStart="
        + argv.replace(
            "/usr/bin/volworker",
            os.path.join(os.path.dirname(sys.executable), "volworker"),
        ),
    ]
    hidden = [p for p in _python_paths() if (p + "/").startswith(HOME_DIRS + TMP_DIRS)]
    if any((p + "/").startswith(HOME_DIRS) for p in hidden):
        lines.append("ProtectHome=tmpfs")
    if hidden:
        lines.append("BindReadOnlyPaths=" + " ".join(hidden))
    dropin = units / "volworker@.service.d"
    dropin.mkdir()
    (dropin / "test.conf").write_text("\n".join(lines) + "\n")


def _boot(root: pathlib.Path, log: pathlib.Path) -> int:
    nspawn = require_tool("systemd-nspawn", "systemd-container")
    cmd = [
        nspawn,
        f"--directory={root}",
        # NOTE: unique, since nspawn keeps per-machine state in /run
        f"--machine=vwtest-{uuid.uuid4().hex[:12]}",
        "--bind-ro=/usr",
        f"--bind={root / 'results'}:/results",
        *(f"--bind-ro={p}" for p in _python_paths()),
        # NOTE: no systemd on the host to register with or to make a scope.
        "--register=no",
        "--keep-unit",
        "--link-journal=no",
        "--quiet",
        "--boot",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # NOTE: cgroup v2 in the container, whatever the host mounts:
            # systemd then sees a unit's last process go at once.
            env={**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"},
        )
        try:
            return proc.wait(BOOT_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # nspawn powers the container off
            try:
                return proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    require_root("booting a container")
    require_service("rabbitmq", 5672)
    work = tmp_path_factory.mktemp("boot")
    root = work / "root"
    _rootfs(root, f"vwtest-{uuid.uuid4().hex[:10]}", f"h{uuid.uuid4().hex[:8]}")
    code = _boot(root, work / "nspawn.log")
    results = root / "results"
    journal = results / "journal"
    context = f"nspawn exit {code}; log {work / 'nspawn.log'}; journal:\n" + (
        journal.read_text()[-4000:] if journal.exists() else "(none)"
    )
    lines = (
        (results / "facts").read_text().splitlines()
        if (results / "facts").exists()
        else []
    )
    found = dict(line.split("=", 1) for line in lines)
    assert found.get("finished") == "yes", f"{found}\n{context}"
    found["journal"] = journal.read_text()
    return found


def test_boot_script_is_shellcheck_clean() -> None:
    shellcheck = require_tool("shellcheck", "shellcheck")
    done = subprocess.run(
        [shellcheck, "-s", "bash", str(ROOT / "tests/deploy/systemd_boot.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_target_waits_for_its_backends(facts: dict[str, str]) -> None:
    assert "volworker@file.service" in facts["target_after"].split()
    assert facts["active"] == "active"
    assert facts["status"] == "Serving file"


def test_worker_runs_as_its_user_in_the_sandbox(facts: dict[str, str]) -> None:
    assert facts["main_user"] == "volworker"
    assert facts["main_nnp"] == "1"
    assert facts["main_seccomp"] == "2"  # filtered: SystemCallFilter= and co
    assert int(facts["main_capbnd"], 16) == 0
    assert facts["attach_rc"] == "0"
    assert facts["volume_mode"] == "volworker 600"


def test_nbd_export_works_in_the_sandbox(facts: dict[str, str]) -> None:
    assert facts["nbd_read_rc"] == "0"
    assert facts["nbd_user"] == "volworker"
    assert facts["nbd_cgroup"] == "1"


def test_nbd_export_needs_its_key(facts: dict[str, str]) -> None:
    assert facts["nbd_plain_rc"] != "0"
    assert facts["key_mode"] == "volworker 600"
    assert facts["key_dir_mode"] == "volworker 700"
    assert facts["key_on_cmdline"] == "0"
    assert facts["key_in_journal"] == "0"


def test_watchdog_pings_reach_systemd(facts: dict[str, str]) -> None:
    assert facts["watchdog_usec"] == "30s"
    assert int(facts["watchdog_ping"]) > 0


def test_crash_restarts(facts: dict[str, str]) -> None:
    assert facts["restarts"] == "1"
    assert facts["restarted_active"] == "active"
    assert facts["restarted_status"] == "Serving file"
    # KillMode=mixed took the volume's qemu-nbd too; the new start serves it
    assert facts["nbd_after_restart_rc"] == "0"


def test_stop_is_clean(facts: dict[str, str]) -> None:
    assert facts["stop_result"] == "success"
    assert facts["stop_code"] == "1"  # CLD_EXITED: it exited, was not killed
    assert facts["stop_status"] == "0"
    assert facts["left_running"] == "0"  # qemu-nbd went with it
    assert facts["nbd_after_stop_rc"] != "0"
    assert "volworker stopped" in facts["journal"]
    assert "status=31/SYS" not in facts["journal"]  # no system call refused
