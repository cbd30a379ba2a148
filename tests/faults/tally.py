"""What the fault tests did and found, summed up for the suite's one line.

Every count of a problem comes from evidence outside the worker's own
account of itself: its database rows, the files and bytes on disk, the fake
backend's effects log and the notifications an outside listener heard (see
``audit.py``, ``effects.py``, ``data.py``, ``heard.py``), never from its log
or its replies.
"""

from __future__ import annotations

import dataclasses

from tests.faults.audit import KINDS, Findings

__all__ = ["Tally", "verdict"]


@dataclasses.dataclass
class Tally:
    """What one test (or the whole suite) did and found."""

    sent: int = 0
    faults: int = 0
    lost: int = 0
    failed: int = 0
    mismatched: int = 0
    stuck: int = 0
    duplicated: int = 0
    data: int = 0
    #: volumes and snapshots whose bytes were read back and compared
    read_back: int = 0
    #: kill rounds finished, and rounds cut short by an error
    rounds: int = 0
    aborted: int = 0

    def add(self, other: Tally) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def count(self, findings: Findings) -> None:
        """Add what an audit found."""
        for name in KINDS:
            setattr(self, name, getattr(self, name) + len(getattr(findings, name)))

    def problems(self) -> int:
        return sum(getattr(self, name) for name in KINDS)

    def counts(self) -> str:
        return (
            f"operations sent {self.sent}, faults injected {self.faults}, "
            f"lost {self.lost}, failed {self.failed}, mismatched {self.mismatched}, "
            f"stuck {self.stuck}, duplicated {self.duplicated}, data mismatches "
            f"{self.data} ({self.read_back} objects read back)"
        )


def verdict(total: Tally, tests: int, failed_tests: int) -> tuple[bool, str]:
    """Whether the suite passed, and its closing line."""
    passed = failed_tests == 0 and total.aborted == 0 and total.problems() == 0
    rounds = f"{total.rounds} kill round{'s' * (total.rounds != 1)}"
    if passed:
        head = f"fault suite passed: {tests} tests, {rounds}"
    else:
        aborted = f", {total.aborted} round(s) aborted" if total.aborted else ""
        head = (
            f"fault suite FAILED: {failed_tests} of {tests} tests failed, "
            f"{rounds}{aborted}"
        )
    return passed, f"{head}; {total.counts()}"
