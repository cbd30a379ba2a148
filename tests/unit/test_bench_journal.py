"""bench/journal.py still journals and finishes creates through the store."""

from __future__ import annotations

import pathlib
import sqlite3

from bench import journal


def test_a_round_journals_and_finishes_every_create(tmp_path: pathlib.Path) -> None:
    per_create = journal._round(str(tmp_path), creates=20, in_flight=4, index=0)
    assert per_create > 0
    with sqlite3.connect(tmp_path / "journal-0.sqlite") as db:
        states = db.execute("SELECT state, count(*) FROM operations GROUP BY state")
        # the warm-up's 100 creates and the round's 20
        assert dict(states.fetchall()) == {"done": 120}
        statuses = db.execute("SELECT DISTINCT status FROM volumes").fetchall()
        assert statuses == [("available",)]
