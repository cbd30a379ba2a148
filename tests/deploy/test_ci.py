"""What CI runs: .ci/run, with CI=true whatever the environment says."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

from tests.deploy.conftest import ROOT


def test_ci_run_sets_ci_true(tmp_path: pathlib.Path) -> None:
    """.ci/run in a copy of the tree whose scripts/test reports $CI."""
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "scripts").mkdir()
    stub = tmp_path / "scripts" / "test"
    stub.write_text('#!/bin/sh\necho "CI=${CI:-unset} $*"\n')
    stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    for given in (None, "false"):
        if given is not None:
            env["CI"] = given
        done = subprocess.run(
            [str(tmp_path / ".ci" / "run"), "tests/unit"],
            cwd="/",
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "CI=true tests/unit", (given, done.stdout)
