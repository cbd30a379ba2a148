"""README.md's commands, run as a newcomer would run them.

The first session is run verbatim against a worker started with the quick
start's own `scripts/run`; every other command the README shows must name the
test (or script) that runs it, so none can go stale unnoticed.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import time
import uuid

from tests.conftest import require_service

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()

#: README command (its start) → the file that runs it.
EXERCISED = {
    "scripts/run": "tests/deploy/test_readme.py",
    "scripts/test": ".ci/run",
    "volworker-compliance": "scripts/test",
    "pytest tests/contract": "scripts/test",
    "scripts/genconfig": "tests/deploy/test_config_sample.py",
    "scripts/ceph": "tests/ceph.py",
    "bench/run": "tests/deploy/test_readme.py",
    "scripts/readme-figures": "tests/deploy/test_readme_figures.py",
    "cp etc/systemd/": "tests/deploy/test_systemd_boot.py",
    "systemd-sysusers": "tests/deploy/test_systemd_boot.py",
    "systemctl daemon-reload": "tests/deploy/test_systemd_boot.py",
    "systemctl enable volworker@file.service volworker.target": (
        "tests/deploy/test_systemd_boot.py"
    ),
    "systemctl start volworker.target": "tests/deploy/systemd_boot.sh",
    "systemctl stop volworker@file.service": "tests/deploy/systemd_boot.sh",
    "curl -s http://127.0.0.1:9669/": "tests/deploy/test_metrics_deploy.py",
}
#: How the exercising file spells a command, where it differs.
SPELLED = {
    "scripts/run": '"scripts" / "run"',
    "bench/run": '"bench" / "run"',
    "scripts/readme-figures": '"scripts" / "readme-figures"',
    "scripts/ceph": '"scripts" / "ceph"',
    "scripts/test": "scripts/test",
    "volworker-compliance": "volworker-compliance",
    "pytest tests/contract": "pytest",
    "cp etc/systemd/": "shutil.copy(SYSTEMD",
    "systemd-sysusers": "sysusers.d",
    "systemctl daemon-reload": '"enable"',
    "systemctl enable volworker@file.service volworker.target": '"enable"',
    "systemctl stop volworker@file.service": 'systemctl stop "$unit"',
    "curl -s http://127.0.0.1:9669/": "README_SCRAPES",
}


def _session_block() -> str:
    match = re.search(r"<!-- readme-session -->\n```bash\n(.*?)```", README, re.S)
    assert match, "README lost its first-session block"
    return match.group(1)


def _indented_commands() -> list[str]:
    """The commands of README's indented (4-space) command blocks."""
    commands = []
    for line in README.splitlines():
        if line.startswith("    ") and not line.startswith("     "):
            command = line.strip().split("  #")[0].strip()
            if command and not command.startswith(("#", "[", "fault suite")):
                commands.append(command)
    return commands


def test_every_readme_command_is_exercised() -> None:
    missing = []
    for command in _indented_commands():
        key = next((k for k in EXERCISED if command.startswith(k)), None)
        if key is None:
            missing.append(command)
            continue
        runner = (ROOT / EXERCISED[key]).read_text()
        assert SPELLED.get(key, key) in runner, (command, EXERCISED[key])
    assert missing == [], f"README commands no test runs: {missing}"


def _notify_socket(path: pathlib.Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.5)
    return sock


def _wait_ready(
    sock: socket.socket, proc: subprocess.Popen[bytes], log: pathlib.Path
) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if b"READY=1" in sock.recv(4096):
                return
        except TimeoutError:
            continue
    raise AssertionError(f"scripts/run never got ready:\n{log.read_text()}")


def _quick_start(
    tmp_path: pathlib.Path, *args: str
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """``scripts/run`` on a topic of its own, its state under tmp_path."""
    topic = f"vwreadme-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "OS_DEFAULT__STATE_PATH": str(tmp_path / "state"),
        "OS_DEFAULT__VOLUME_TOPIC": topic,
        "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
    }
    sock = _notify_socket(tmp_path / "notify.sock")
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(ROOT / "scripts" / "run"), *args],
            cwd=tmp_path,  # started from elsewhere than the checkout
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(sock, proc, log)
    except BaseException:
        proc.kill()
        raise
    finally:
        sock.close()
    return proc, {**os.environ, "VOLWORKER_TOPIC": topic}


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


def test_first_session_runs_against_the_quick_start(tmp_path: pathlib.Path) -> None:
    require_service("rabbitmq", 5672)
    proc, env = _quick_start(tmp_path)
    psk_dir = tmp_path / "psk"
    try:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _session_block()],
            cwd=ROOT,
            env={**env, "VOLWORKER_PSK_DIR": str(psk_dir)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        code = _stop(proc)
    assert done.returncode == 0, done.stdout + done.stderr
    # the bytes written to the volume came back from the clone of its snapshot,
    # over TLS with the attachment's key, which the detach then forgot
    assert "read 1048576/1048576 bytes" in done.stdout
    assert "Pattern verification failed" not in done.stdout
    assert "1073741824" in done.stdout
    assert list(psk_dir.iterdir()) == []
    assert code == 0


def test_quick_start_serves_the_fake_backend(tmp_path: pathlib.Path) -> None:
    require_service("rabbitmq", 5672)
    proc, env = _quick_start(tmp_path, "--backend", "fake")
    host = f"{socket.gethostname()}@fake"
    listed = subprocess.run(
        [str(ROOT / ".venv/bin/volworker-client"), "--host", host, "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert _stop(proc) == 0
    assert listed.returncode == 0, listed.stderr


def _bench(out: pathlib.Path, figures: str, *more: str) -> None:
    done = subprocess.run(
        [
            str(ROOT / "bench" / "run"),
            "--quick",
            "--figures",
            figures,
            "--repeats",
            "1",
            "--out",
            str(out),
            *more,
        ],
        cwd=out.parent,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_bench_runs_and_writes_its_report(tmp_path: pathlib.Path) -> None:
    require_service("rabbitmq", 5672)
    _bench(tmp_path / "full", "2,3,9")
    report = (tmp_path / "full" / "latest.md").read_text()
    assert "get_volume call, p50" in report and "start to READY=1" in report
    assert "PSS of the exports, 1 attachment" in report
    # a figure measured again goes into the earlier run's results
    earlier = tmp_path / "full" / "latest.json"
    _bench(tmp_path / "again", "6", "--merge", str(earlier))
    merged = json.loads((tmp_path / "again" / "latest.json").read_text())
    assert sorted({r["fig"] for r in merged["rows"]}, key=int) == ["2", "3", "6", "9"]
    assert "Figure(s) 6 measured again" in merged["notes"][-1]
    assert "capabilities, 1 pools: message size" in (
        (tmp_path / "again" / "latest.md").read_text()
    )
