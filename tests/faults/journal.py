"""The worker's database, read as an auditor reads it: plain SQL on its
tables, none of the worker's code, SQLite (opened read-only) or PostgreSQL."""

from __future__ import annotations

import datetime as dt
import functools
import json
import pathlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

__all__ = ["Journal", "utc"]

#: What a database says while the worker has not made its tables yet.
_NOT_YET = ("no such table", "unable to open database file", "does not exist")


@functools.cache
def _engine(url: str) -> sa.Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # Read-only, so that the audit can never change what it reads.
        path = pathlib.Path(parsed.database or "").resolve()
        return sa.create_engine(
            f"sqlite:///file:{path}?mode=ro&uri=true",
            poolclass=NullPool,
            connect_args={"timeout": 30},
        )
    return sa.create_engine(url, poolclass=NullPool)


def utc(value: Any) -> dt.datetime | None:
    """A timestamp column as an aware UTC datetime; SQLite keeps naive text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


class Journal:
    """One worker's database (``[database] connection``)."""

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    def sqlite(cls, path: pathlib.Path) -> Journal:
        return cls(f"sqlite:///{path}")

    def query(self, sql: str) -> list[dict[str, Any]]:
        """The rows; none before the worker has made its tables."""
        try:
            with _engine(self.url).connect() as conn:
                return [dict(row._mapping) for row in conn.execute(sa.text(sql))]
        except sa.exc.DBAPIError as exc:
            if any(text in str(exc.orig) for text in _NOT_YET):
                return []
            raise

    def operations(self) -> list[dict[str, Any]]:
        return self.query(
            "SELECT seq, message_id, request_id, action, resource_id, state, error, "
            "started_at, finished_at FROM operations ORDER BY seq"
        )

    def volumes(self) -> dict[str, dict[str, Any]]:
        rows = self.query("SELECT id, status, size, error FROM volumes")
        return {row["id"]: row for row in rows}

    def snapshots(self) -> dict[str, dict[str, Any]]:
        rows = self.query("SELECT id, volume_id, status, size, error FROM snapshots")
        return {row["id"]: row for row in rows}

    def attachments(self) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT volume_id, connector_host, connection_info FROM attachments"
        )
        for row in rows:
            info = row["connection_info"]
            if isinstance(info, str):
                info = json.loads(info)
            row["connection_info"] = info
        return rows
