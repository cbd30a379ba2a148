"""The alembic scripts build exactly the models' schema, a new database
gets the same from the models, and start is cheap."""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from tests.unit.state.conftest import pg_admin
from volworker.state import _engine, migrations, models


@pytest.fixture
def engine(db_url: str) -> sa.Engine:
    engine = _engine.create_engine(db_url)
    yield engine
    engine.dispose()


def _differences(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, models.Base.metadata))


def test_head_constant_is_the_scripts_head() -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config())
    assert script.get_heads() == [migrations.HEAD_REVISION]


def _schema(engine: sa.Engine) -> dict[str, object]:
    """Every table's columns, keys and indexes, as the database reports them
    (columns by name: the scripts add some at the end of older tables)."""
    inspector = sa.inspect(engine)
    found: dict[str, object] = {}
    for table in sorted(inspector.get_table_names()):
        found[table] = {
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"], c.get("default"))
                for c in inspector.get_columns(table)
            ),
            "pk": inspector.get_pk_constraint(table),
            "fks": sorted(map(repr, inspector.get_foreign_keys(table))),
            "unique": sorted(map(repr, inspector.get_unique_constraints(table))),
            "indexes": sorted(map(repr, inspector.get_indexes(table))),
            "checks": sorted(map(repr, inspector.get_check_constraints(table))),
        }
    return found


def test_migrations_build_the_models_schema(engine: sa.Engine) -> None:
    assert migrations.current_revision(engine) is None
    migrations.upgrade(engine, from_models=False)
    assert migrations.current_revision(engine) == migrations.HEAD_REVISION
    assert _differences(engine) == []
    assert set(sa.inspect(engine).get_table_names()) == {
        "alembic_version",
        "attachments",
        "group_snapshots",
        "groups",
        "operation_volumes",
        "initiator_data",
        "operations",
        "snapshots",
        "volumes",
    }


@contextlib.contextmanager
def _another_database(db_url: str, tmp_path: pathlib.Path) -> Iterator[sa.Engine]:
    """A second empty database of the same kind as ``db_url``."""
    if not db_url.startswith("postgresql"):
        engine = _engine.create_engine(f"sqlite:///{tmp_path}/other.sqlite")
        yield engine
        engine.dispose()
        return
    name = f"volworker_test_{uuid.uuid4().hex[:12]}"
    admin = pg_admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = _engine.create_engine(db_url.rsplit("/", 1)[0] + "/" + name)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_a_new_database_gets_the_scripts_schema_from_the_models(
    engine: sa.Engine, db_url: str, tmp_path: pathlib.Path
) -> None:
    migrations.upgrade(engine)
    assert migrations.current_revision(engine) == migrations.HEAD_REVISION
    assert _differences(engine) == []
    with _another_database(db_url, tmp_path) as scripted:
        migrations.upgrade(scripted, from_models=False)
        assert _schema(engine) == _schema(scripted)


def test_a_new_database_does_not_load_alembic(db_url: str) -> None:
    probe = (
        "import sys\n"
        "from volworker.state import _engine, migrations\n"
        f"engine = _engine.create_engine({db_url!r})\n"
        "migrations.upgrade(engine)\n"
        "assert migrations.current_revision(engine) == migrations.HEAD_REVISION\n"
        "print(sorted(m for m in sys.modules if m.startswith('alembic')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    )
    assert out.stdout.strip() == "[]"


def test_comparison_sees_a_schema_that_differs(engine: sa.Engine) -> None:
    """The check above could fail: a missing index is found."""
    migrations.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_volumes_status"))
    differences = _differences(engine)
    assert len(differences) == 1
    assert differences[0][0] == "add_index"  # type: ignore[index]


def test_upgrade_twice_changes_nothing(engine: sa.Engine) -> None:
    migrations.upgrade(engine)
    migrations.upgrade(engine)
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
        assert versions.scalars().all() == [migrations.HEAD_REVISION]


def test_downgrade_removes_every_table(engine: sa.Engine) -> None:
    migrations.upgrade(engine)
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}


def test_upgrade_at_head_does_not_load_alembic(db_url: str) -> None:
    engine = _engine.create_engine(db_url)
    migrations.upgrade(engine)
    engine.dispose()
    probe = (
        "import sys\n"
        "from volworker.state import _engine, migrations\n"
        f"engine = _engine.create_engine({db_url!r})\n"
        "migrations.upgrade(engine)\n"
        "print(sorted(m for m in sys.modules if m.startswith('alembic')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    )
    assert out.stdout.strip() == "[]"


def test_members_starting_together_upgrade_once(db_url: str) -> None:
    engines = [_engine.create_engine(db_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def start(engine: sa.Engine) -> None:
        barrier.wait()
        try:
            migrations.upgrade(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        assert migrations.current_revision(engines[0]) == migrations.HEAD_REVISION
        assert _differences(engines[0]) == []
    finally:
        for engine in engines:
            engine.dispose()
