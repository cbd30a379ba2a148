"""The [database] options."""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from volworker import opts
from volworker.state import list_opts, options, register_opts


def test_options_are_listed_for_the_generator() -> None:
    names = {opt.name for opt in options.database_opts}
    assert {"connection", "sqlite_synchronous", "batch_max"} <= names
    assert dict(list_opts())["database"] == options.database_opts
    assert [o.name for o in dict(opts.list_opts())["database"]] == [
        o.name for o in options.database_opts
    ]


def test_defaults(tmp_path: Any) -> None:
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.StrOpt("state_path", default=str(tmp_path)))
    register_opts(conf)
    register_opts(conf)  # twice is harmless
    conf([], project="volworker-test", default_config_files=[])
    assert conf.database.connection == f"sqlite:///{tmp_path}/volworker.sqlite"
    assert conf.database.sqlite_synchronous == "FULL"
    assert conf.database.batch_max == 500
    assert conf.database.journal_retention_days == 7
    assert options.database_opts[0].secret
