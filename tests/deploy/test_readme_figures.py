"""README.md's figures are generated, never typed: the fault suite's line and
the benchmark table are what ``scripts/readme-figures`` makes of the results
kept in docs/results/, and those say where and when they were measured."""

from __future__ import annotations

import copy
import subprocess

from bench import readme
from tests.deploy.conftest import ROOT


def test_readme_shows_the_committed_results() -> None:
    done = subprocess.run(
        [str(ROOT / "scripts" / "readme-figures"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_changed_result_makes_the_readme_stale() -> None:
    text = readme.README.read_text()
    results = readme.load()
    assert readme.render(text, results) == text
    for name, path in (("faults", ("line",)), ("bench", ("rows", 0, "what"))):
        changed = copy.deepcopy(results)
        target = changed[name]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = "something else"
        assert readme.render(text, changed) != text, name


def test_the_results_say_where_and_when() -> None:
    results = readme.load()
    for name in readme.BLOCKS:
        machine = results[name]["machine"]
        assert machine["cpu"] and machine["nproc"] >= 1, name
        assert machine["commit"] not in ("", "unknown"), name
    faults, bench = results["faults"], results["bench"]
    assert faults["passed"] and faults["line"].startswith("fault suite passed:")
    assert faults["date"] and faults["kill_rounds"]
    assert bench["mode"] == "full" and bench["started"]
    shown = readme.README.read_text()
    assert faults["line"] in shown
    assert all(row["what"] in shown for row in bench["rows"])
