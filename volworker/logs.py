"""Log levels changed while the worker runs: SIGHUP re-reads the
configuration files and applies what may change without a restart.

oslo.log's own mutable options come with it (``debug``: the root logger's
level; ``log_config_append``: a logging configuration file), and
``log_levels`` here sets single loggers, e.g.
``log_levels = volworker.manager=DEBUG,oslo.messaging=INFO`` to follow one
part of the worker closely without drowning in the rest. Every other option
keeps the value it had at start; oslo.config warns about those that changed.
"""

from __future__ import annotations

import logging
from typing import Any

from oslo_config import cfg

__all__ = ["apply", "log_level_opts", "register_opts", "reload", "watch"]

LOG = logging.getLogger(__name__)

log_level_opts = [
    cfg.ListOpt(
        "log_levels",
        default=[],
        mutable=True,
        help="logger=LEVEL pairs applied over default_log_levels and debug, "
        "e.g. volworker.manager=DEBUG; changed by SIGHUP without a restart "
        "(so is debug).",
    ),
]

#: the loggers log_levels set, and the level each had before
_overridden: dict[str, int] = {}


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(log_level_opts)


def _parse(pairs: list[str]) -> dict[str, int]:
    levels: dict[str, int] = {}
    for pair in pairs:
        name, sep, level = pair.partition("=")
        number = logging.getLevelName(level.strip().upper())
        if not sep or not name.strip() or not isinstance(number, int):
            LOG.warning("Ignoring log_levels entry %r: not logger=LEVEL", pair)
            continue
        levels[name.strip()] = number
    return levels


def apply(conf: cfg.ConfigOpts) -> None:
    """Set the loggers ``log_levels`` names; give back their earlier level
    to those it no longer names."""
    wanted = _parse(list(conf.log_levels))
    for name in set(_overridden) - set(wanted):
        logging.getLogger(name).setLevel(_overridden.pop(name))
    for name, level in wanted.items():
        logger = logging.getLogger(name)
        _overridden.setdefault(name, logger.level)
        logger.setLevel(level)


def _mutated(conf: cfg.ConfigOpts, fresh: dict[Any, Any]) -> None:
    if (None, "log_levels") in fresh:
        apply(conf)


def watch(conf: cfg.ConfigOpts) -> None:
    """Apply ``log_levels`` now and whenever a reload changes them."""
    apply(conf)
    conf.register_mutate_hook(_mutated)


def reload(conf: cfg.ConfigOpts) -> None:
    """Re-read the configuration files and apply the mutable options."""
    LOG.info("Received SIGHUP: reloading the mutable options (logging)")
    try:
        changed = conf.mutate_config_files()
    except Exception as exc:
        LOG.error("Could not reload the configuration: %s", exc)
        return
    if not changed:
        LOG.info("Nothing to change: the mutable options are as they were")
