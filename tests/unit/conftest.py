"""Fixtures of the unit tests: a real SQLite state store."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from volworker.state import Store


@pytest.fixture
def store(tmp_path: pathlib.Path) -> Iterator[Store]:
    found = Store(f"sqlite:///{tmp_path}/state.sqlite")
    found.start()
    yield found
    found.stop(timeout=30)
