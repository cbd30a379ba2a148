"""What a fault test did and found, summed up for the suite's one line."""

from __future__ import annotations

import dataclasses

__all__ = ["Tally"]


@dataclasses.dataclass
class Tally:
    """What one test did and found."""

    sent: int = 0
    faults: int = 0
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0

    def add(self, other: Tally) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def line(self) -> str:
        return (
            f"fault suite: operations sent {self.sent}, faults injected "
            f"{self.faults}, lost {self.lost}, duplicated {self.duplicated}, "
            f"stuck {self.stuck}"
        )
