"""bench/journal.py still journals and finishes creates through the store."""

from __future__ import annotations

import pathlib

from bench import journal


def test_a_round_journals_and_finishes_every_create(tmp_path: pathlib.Path) -> None:
    per_create = journal._round(str(tmp_path), creates=20, in_flight=4, index=0)
    assert 0 < per_create < 1.0
    assert (tmp_path / "journal-0.sqlite").exists()
