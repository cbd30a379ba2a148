"""The checked-in sample config is what the code declares, on any machine."""

from __future__ import annotations

import difflib
import os
import pathlib
import subprocess
import sys
import uuid

from tests.conftest import require_root
from tests.deploy.conftest import ROOT, require_tool

SAMPLE = ROOT / "etc" / "volworker" / "volworker.conf.sample"
REGENERATE = "scripts/genconfig (or tox -e genconfig)"
NAMESPACES = (
    "volworker",
    "volworker.drivers.file",
    "volworker.drivers.fake",
    "oslo.messaging",
    "oslo.log",
)


def _generate(out: pathlib.Path, *prefix: str, **env: str) -> None:
    cmd = [*prefix, str(ROOT / "scripts" / "genconfig"), "--output-file", str(out)]
    done = subprocess.run(
        cmd,
        env={**os.environ, "PYTHON": sys.executable, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.exists(), done.stderr


def _diff(expected: str, actual: str) -> str:
    lines = difflib.unified_diff(
        expected.splitlines(keepends=True),
        actual.splitlines(keepends=True),
        "checked-in sample",
        "generated",
    )
    return "".join(list(lines)[:60])


def test_sample_is_current(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "volworker.conf.sample"
    _generate(out)
    generated, checked_in = out.read_text(), SAMPLE.read_text()
    assert generated == checked_in, (
        f"{SAMPLE.relative_to(ROOT)} is stale: run {REGENERATE} and commit it.\n"
        + _diff(checked_in, generated)
    )


def test_sample_has_every_namespace() -> None:
    text = SAMPLE.read_text()
    for namespace in NAMESPACES:
        assert f"# From {namespace}\n" in text, namespace
    # the options an operator of the file and fake drivers must find
    for option in ("#file_pools = ", "#fake_pools = ", "#transport_url = "):
        assert option in text, option


def test_sample_does_not_depend_on_the_machine(tmp_path: pathlib.Path) -> None:
    """Generated under another host name and home, the sample is the same:
    defaults like ``host`` show a placeholder, not this machine's value."""
    require_root("a private UTS namespace for another host name")
    require_tool("unshare", "util-linux")
    other = f"elsewhere-{uuid.uuid4().hex[:8]}"
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "volworker.conf.sample"
    _generate(
        out,
        "unshare",
        "--uts",
        "sh",
        "-c",
        'hostname "$0" && exec "$@"',
        other,
        HOME=str(home),
    )
    text = out.read_text()
    assert other not in text
    assert str(home) not in text
    assert text == SAMPLE.read_text(), _diff(SAMPLE.read_text(), text)


def test_sample_names_no_path_of_this_checkout() -> None:
    text = SAMPLE.read_text()
    for leak in {str(ROOT), sys.prefix, os.path.expanduser("~")} - {"/"}:
        assert leak not in text, leak
