"""Schema migrations of the state database (alembic).

:func:`upgrade` brings a database to :data:`HEAD_REVISION`. The usual start
finds the database at head already: one query answers that, and alembic's
command machinery is not even imported. A new, empty database gets the
models' schema and the head revision stamped, also without alembic, whose
import would stay in the worker's memory for its whole life (about 5 MiB,
figure 8); the scripts build the same schema (a test compares the two), and
they upgrade every database that has one already.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from volworker.state import models

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "HEAD_REVISION",
    "SCRIPT_LOCATION",
    "alembic_config",
    "current_revision",
    "upgrade",
]

LOG = logging.getLogger(__name__)

#: The newest revision in ``versions/``; a test keeps the two in step.
HEAD_REVISION = "0004"
SCRIPT_LOCATION = os.path.dirname(os.path.abspath(__file__))

# Any fixed number; members of a cluster serialise their upgrades on it.
_PG_LOCK_KEY = 0x766F6C776B72  # "volwkr"


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic configuration for the scripts here, without an ini file."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or None when it has no schema yet."""
    with engine.connect() as conn:
        try:
            return conn.execute(
                sa.text("SELECT version_num FROM alembic_version")
            ).scalar()
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
            if exc.connection_invalidated:
                raise
            return None


def _create_from_models(conn: Connection) -> None:
    """The models' tables and alembic's version table, at head."""
    models.Base.metadata.create_all(conn)
    # As alembic makes it, so that its later upgrades find it as their own.
    version = sa.Table(
        "alembic_version",
        sa.MetaData(),
        sa.Column("version_num", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    version.create(conn)
    conn.execute(version.insert().values(version_num=HEAD_REVISION))


def upgrade(engine: Engine, *, from_models: bool = True) -> None:
    """Bring the database to :data:`HEAD_REVISION`; an empty one from the
    models unless ``from_models`` is false (then by the scripts)."""
    current = current_revision(engine)
    if current == HEAD_REVISION:
        return
    start = time.monotonic()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Members starting together must not both create tables;
            # the lock lasts until this transaction ends.
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY}
            )
        # On SQLite, BEGIN IMMEDIATE already made this exclusive. Another
        # member may have created the schema while this one waited.
        if from_models and not sa.inspect(conn).get_table_names():
            _create_from_models(conn)
        else:
            from alembic import command

            command.upgrade(alembic_config(conn), "head")
    LOG.info(
        "State database upgraded from %s to %s in %.3fs",
        current or "nothing",
        HEAD_REVISION,
        time.monotonic() - start,
    )
