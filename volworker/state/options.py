"""Options of the state store: the ``[database]`` section."""

from __future__ import annotations

from oslo_config import cfg

__all__ = ["GROUP", "database_opts", "list_opts", "register_opts"]

GROUP = "database"

database_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "connection",
        secret=True,
        default="sqlite:///$state_path/volworker.sqlite",
        help="SQLAlchemy URL of the worker's state database. SQLite serves "
        "one host; the members of a cluster share one PostgreSQL database "
        "(postgresql+psycopg2://user:password@host/dbname).",
    ),
    cfg.StrOpt(
        "sqlite_synchronous",
        default="FULL",
        choices=["FULL", "NORMAL"],
        help="SQLite's synchronous setting. FULL survives a power loss with "
        "every committed transaction; NORMAL (with the write-ahead log) may "
        "lose the last transactions on power loss but never corrupts.",
    ),
    cfg.IntOpt(
        "batch_max",
        default=500,
        min=1,
        help="How many queued work items the store commits together in one "
        "transaction at most.",
    ),
    cfg.IntOpt(
        "journal_retention_days",
        default=7,
        min=1,
        help="How long finished operations stay in the journal (for "
        "de-duplicating redelivered messages and for inspection) before "
        "they are purged.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(database_opts, group=GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [(GROUP, list(database_opts))]
