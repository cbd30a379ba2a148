"""README.md's figures, written from results files, never by hand.

    scripts/readme-figures [--faults RESULTS.json] [--bench RESULTS.json] [--check]

README.md shows two kinds of figures, each between a pair of markers: the
fault suite's closing line (``tests/faults``, results file
``.pytest_cache/d/faults/results.json``) and the benchmark table
(``bench/run``, results file ``bench/results/latest.json``), each with the
machine, date and commit it was measured on. The results README.md shows
are kept in git under ``docs/results/``.

``--faults`` and ``--bench`` first copy a new results file there; then the
figures are written into README.md again from ``docs/results/``. With
``--check`` nothing is written, and the exit code is 1 when README.md is
not what those results make (a test runs this).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import shutil
import sys
import textwrap
from typing import Any

from bench import report

__all__ = ["BLOCKS", "main", "render"]

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "docs" / "results"
#: README.md's prose is wrapped at this width
WIDTH = 78


def _machine(m: dict[str, Any]) -> str:
    return (
        f"{m['nproc']} x {m['cpu']}, Linux {m['kernel']}, Python {m['python']}, "
        f"RabbitMQ {m['rabbitmq']}, volworker {m['commit']}"
    )


def _minutes(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _setup(rounds: dict[str, Any]) -> str:
    where = {
        "file": f"file driver on {rounds.get('filesystem')}",
        "fake": "fake driver with its effects log",
        "rbd": f"rbd driver on a {rounds.get('filesystem')} Ceph",
    }[rounds["driver"]]
    return (
        f"{where}, journal in {rounds['database']}: {rounds['rounds']} rounds "
        f"of ~{rounds['operations']} operations, {rounds['kills']} kills"
    )


def faults_block(result: dict[str, Any]) -> str:
    """The fault suite's line, with where and when it ran."""
    setups = "; ".join(_setup(r) for r in result.get("kill_rounds", []))
    rounds = f"; its kill rounds ran on the {setups}" if setups else ""
    head = (
        f"The latest run, {result['date'][:10]} on {_machine(result['machine'])}, "
        f"took {_minutes(result['seconds'])}{rounds}:"
    )
    return f"{textwrap.fill(head, WIDTH)}\n\n    {result['line']}\n"


def bench_block(result: dict[str, Any]) -> str:
    """The benchmark table, with where and when it was measured."""
    head = (
        f"The latest run, {result['started'][:10]}, took "
        f"{_minutes(result['seconds'])} on {report.machine_line(result)}:"
    )
    parts = [
        textwrap.fill(head, WIDTH),
        "",
        report.table(result["rows"]),
    ]
    if result.get("failed"):
        parts += ["", f"Figure(s) {', '.join(result['failed'])} failed in that run."]
    # the figures measured again since (report.merged), each with its date
    # and commit: the head line's are the full run's
    again = [n for n in result.get("notes", []) if n.startswith(report.AGAIN)]
    if again:
        parts.append("")
        parts += [
            textwrap.fill(n, WIDTH, initial_indent="- ", subsequent_indent="  ")
            for n in again
        ]
    return "\n".join(parts) + "\n"


#: marker name -> (results file under docs/results, renderer)
BLOCKS = {
    "faults": ("faults.json", faults_block),
    "bench": ("bench.json", bench_block),
}


def _marked(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- figures:{name} [^\n]*-->\n)(.*?)(<!-- /figures:{name} -->)", re.S
    )


def render(readme: str, results: dict[str, dict[str, Any]]) -> str:
    """``readme`` with each block written from ``results[name]``."""
    for name, (_, make) in BLOCKS.items():
        pattern = _marked(name)
        if not pattern.search(readme):
            raise ValueError(f"README.md has no figures:{name} markers")
        block = make(results[name])

        def written(m: re.Match[str], block: str = block) -> str:
            return m.group(1) + block + m.group(3)

        readme = pattern.sub(written, readme)
    return readme


def load(folder: pathlib.Path = RESULTS) -> dict[str, dict[str, Any]]:
    return {
        name: json.loads((folder / file).read_text())
        for name, (file, _) in BLOCKS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/readme-figures", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--faults", type=pathlib.Path, help="new fault suite results")
    parser.add_argument("--bench", type=pathlib.Path, help="new bench/run results")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if stale"
    )
    args = parser.parse_args(argv)
    for name, given in (("faults", args.faults), ("bench", args.bench)):
        if given is not None and not args.check:
            RESULTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(given, RESULTS / BLOCKS[name][0])
    text = README.read_text()
    new = render(text, load())
    if args.check:
        if new != text:
            print(
                "README.md's figures are not those of docs/results/: "
                "run scripts/readme-figures",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
