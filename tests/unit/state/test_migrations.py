"""The alembic scripts build exactly the models' schema, and start is cheap."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

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


def test_migrations_build_the_models_schema(engine: sa.Engine) -> None:
    assert migrations.current_revision(engine) is None
    migrations.upgrade(engine)
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
