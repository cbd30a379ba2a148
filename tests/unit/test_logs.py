"""log_levels sets single loggers, and a reload of the files changes them
(and gives back the levels they had before)."""

from __future__ import annotations

import logging
import pathlib
import uuid

import pytest
from oslo_config import cfg

from volworker import logs


def _watched(config: pathlib.Path, text: str) -> cfg.ConfigOpts:
    config.write_text(text)
    conf = cfg.ConfigOpts()
    logs.register_opts(conf)
    conf(["--config-file", str(config)])
    logs.watch(conf)
    return conf


def test_reload_applies_and_withdraws_log_levels(tmp_path: pathlib.Path) -> None:
    name = f"volworker.test.{uuid.uuid4().hex[:8]}"
    other = f"{name}.other"
    logging.getLogger(other).setLevel(logging.ERROR)
    config = tmp_path / "volworker.conf"
    conf = _watched(config, f"[DEFAULT]\nlog_levels = {name}=DEBUG,{other}=warning\n")
    assert logging.getLogger(name).level == logging.DEBUG
    assert logging.getLogger(other).level == logging.WARNING

    config.write_text(f"[DEFAULT]\nlog_levels = {name}=INFO\n")
    logs.reload(conf)
    assert logging.getLogger(name).level == logging.INFO
    assert logging.getLogger(other).level == logging.ERROR  # as before

    config.write_text("[DEFAULT]\n")
    logs.reload(conf)
    assert logging.getLogger(name).level == logging.NOTSET


def test_a_broken_file_keeps_the_levels(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"volworker.test.{uuid.uuid4().hex[:8]}"
    config = tmp_path / "volworker.conf"
    conf = _watched(config, f"[DEFAULT]\nlog_levels = {name}=DEBUG\n")
    config.write_text("[DEFAULT\nthis is not ini\n")
    logs.reload(conf)
    assert logging.getLogger(name).level == logging.DEBUG
    assert "Could not reload the configuration" in caplog.text
