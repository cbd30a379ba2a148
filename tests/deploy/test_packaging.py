"""Packaging: an sdist and a wheel build from a clean copy of the checkout,
install into a fresh virtualenv and run."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _run(*cmd: str | pathlib.Path, cwd: pathlib.Path | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"{cmd}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """sdist from a clean clone (what git tracks), then a wheel from the sdist."""
    base = tmp_path_factory.mktemp("packaging")
    clone = base / "clone"
    _run("git", "clone", "--quiet", "--no-local", ROOT, clone)
    # NOTE: the working tree's own files, so uncommitted work is what is built.
    for tracked in _run("git", "ls-files", cwd=ROOT).splitlines():
        source = ROOT / tracked
        if source.is_file():
            (clone / tracked).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / tracked)
    out = base / "dist"
    _run(sys.executable, "-m", "build", "--sdist", "--outdir", out, clone)
    sdist = next(out.glob("volworker-*.tar.gz"))
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, sdist)
    return out


def test_wheel_holds_the_packages_and_data(dist: pathlib.Path) -> None:
    wheel = next(dist.glob("volworker-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "volworker/state/migrations/versions/0001_initial.py" in names
    assert "volworker/state/migrations/script.py.mako" in names
    assert "volworker_drivers/file/driver.py" in names
    assert not [n for n in names if n.startswith("drivers/")], "a bare drivers package"
    assert not [n for n in names if n.startswith("tests/")]


def test_wheel_installs_and_runs_in_a_fresh_virtualenv(
    dist: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    wheel = next(dist.glob("volworker-*.whl"))
    _run(venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", wheel)
    report = _run(venv / "bin" / "volworker-compliance")
    assert "volworker_drivers.file.driver.FileDriver: compliant" in report
    assert "volworker_drivers.fake.driver.FakeDriver: compliant" in report
    assert "--backend" in _run(venv / "bin" / "volworker", "--help")
    assert "create" in _run(venv / "bin" / "volworker-client", "--help")
    # the state database migrates from the installed scripts
    probe = (
        "from volworker.state import Store; s = Store('sqlite:///"
        f"{tmp_path}/probe.sqlite'); s.start(); s.stop(); print('migrated')"
    )
    assert "migrated" in _run(venv / "bin" / "python", "-W", "ignore", "-c", probe)
