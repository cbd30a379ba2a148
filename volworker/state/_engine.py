"""Engines for the state database: SQLite on one host, PostgreSQL for a cluster."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import StaticPool

from volworker.state.private import private_dir, private_file

__all__ = ["create_engine", "safe_url", "sqlite_path"]

LOG = logging.getLogger(__name__)

#: How long an SQLite connection waits for another process's write lock.
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_SYNCHRONOUS = ("FULL", "NORMAL")


def safe_url(url: str | URL) -> str:
    """``url`` fit for a log line: the password masked."""
    return sa.make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: URL) -> str | None:
    """The file of an SQLite URL, or None for another database or memory."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def create_engine(url: str | URL, *, sqlite_synchronous: str = "FULL") -> Engine:
    """An engine for ``url``; an SQLite file and its directory are created
    first, private to the worker (0600, 0700).

    Errors never show statement parameters: rows hold secrets such as
    ``provider_auth``, and errors end up in logs.
    """
    url = sa.make_url(url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, sqlite_synchronous)
    # pre_ping replaces a connection the server dropped while it sat in
    # the pool, so a batch after an outage reconnects instead of failing.
    return sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)


def _set_wal(cursor: Any, attempts: int = 100) -> None:
    """Switch to WAL; retry while another process creates the database.

    Changing the journal mode needs the database to itself, and SQLite
    does not wait busy_timeout for that while another connection is setting
    up the same new file: it answers "database is locked" at once.
    """
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def _private_database(path: str) -> None:
    """The database file (and its WAL files, if any) readable by the worker
    alone: rows hold secrets such as ``provider_auth``. SQLite gives the WAL
    files it creates the database file's mode."""
    private_dir(os.path.dirname(os.path.abspath(path)))
    for name in (path, path + "-wal", path + "-shm"):
        if name == path or os.path.isfile(name):
            private_file(name)


def _sqlite_engine(url: URL, synchronous: str) -> Engine:
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(f"sqlite_synchronous must be one of {SQLITE_SYNCHRONOUS}")
    path = sqlite_path(url)
    if path is not None:
        _private_database(path)
        engine = sa.create_engine(url, hide_parameters=True)
    else:
        # An in-memory database lives as long as its one connection,
        # which the migrating thread and the store thread must share.
        engine = sa.create_engine(
            url,
            hide_parameters=True,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The sqlite3 module's own transaction handling ignores
        # SAVEPOINT and DDL; switch it off and send BEGIN ourselves (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if path is not None:
                _set_wal(cursor)
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # IMMEDIATE takes the write lock at once: a transaction that
        # read first and writes later can no longer fail with SQLITE_BUSY
        # when another process holds the lock; it waits busy_timeout instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
