"""The state directory and the SQLite database are private whatever the
umask: 0700 and 0600, the database's WAL files too."""

from __future__ import annotations

import os
import pathlib
import stat
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from volworker.state import _engine
from volworker.state.private import private_dir


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    yield
    os.umask(previous)


def _mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_state_directory_is_0700(
    tmp_path: pathlib.Path, open_umask: None
) -> None:
    state = tmp_path / "var" / "lib" / "volworker"
    private_dir(str(state))
    assert _mode(state) == 0o700


def test_an_existing_directory_is_left_as_the_operator_made_it(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "shared"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    private_dir(str(state))
    assert _mode(state) == 0o755
    assert "others than the worker may read it" in caplog.text


def test_the_database_and_its_wal_files_are_0600(
    tmp_path: pathlib.Path, open_umask: None
) -> None:
    path = tmp_path / "state" / "volworker.sqlite"
    engine = _engine.create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        made = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        assert {p.name for p in made} >= {path.name, f"{path.name}-wal"}
        assert {p.name: _mode(p) for p in made} == {p.name: 0o600 for p in made}
        assert _mode(path.parent) == 0o700
    finally:
        engine.dispose()


def test_a_loose_database_is_made_private(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "volworker.sqlite"
    path.touch(mode=0o644)
    path.chmod(0o644)
    _engine.create_engine(f"sqlite:///{path}").dispose()
    assert _mode(path) == 0o600
