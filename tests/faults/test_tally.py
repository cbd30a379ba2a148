"""The closing line says FAILED for every way the suite can fail."""

from __future__ import annotations

import dataclasses

import pytest

from tests.faults.audit import KINDS, Findings
from tests.faults.tally import Tally, verdict


def test_a_clean_run_passes_and_says_what_it_counted() -> None:
    total = Tally(sent=10, faults=2, read_back=4, rounds=1)
    passed, line = verdict(total, tests=3, failed_tests=0)
    assert passed
    assert line.startswith("fault suite passed: 3 tests, 1 kill round;")
    for name in ("lost 0", "failed 0", "mismatched 0", "stuck 0", "duplicated 0"):
        assert name in line
    assert "data mismatches 0 (4 objects read back)" in line


@pytest.mark.parametrize("kind", KINDS)
def test_any_problem_counted_fails_the_suite(kind: str) -> None:
    total = Tally()
    total.count(Findings(**{kind: ["one"]}))
    passed, line = verdict(total, tests=3, failed_tests=0)
    assert not passed and line.startswith("fault suite FAILED: 0 of 3 tests failed")
    assert getattr(total, kind) == 1


def test_a_failed_test_or_an_aborted_round_fails_the_suite() -> None:
    passed, line = verdict(Tally(), tests=3, failed_tests=1)
    assert not passed and "1 of 3 tests failed" in line
    passed, line = verdict(Tally(rounds=2, aborted=1), tests=3, failed_tests=0)
    assert not passed and "1 round(s) aborted" in line


def test_tallies_add_up_field_by_field() -> None:
    one = Tally(**{f.name: 1 for f in dataclasses.fields(Tally)})
    total = Tally()
    total.add(one)
    total.add(one)
    assert total == Tally(**{f.name: 2 for f in dataclasses.fields(Tally)})
