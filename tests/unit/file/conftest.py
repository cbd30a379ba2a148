"""Fixtures of the file driver's unit tests: drivers on pools in tmp_path or
on the session's XFS (reflink) mount; every export a test makes is stopped."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.contract.harness_file import file_config, stop_exports
from tests.contract.xfs import xfs_mount  # noqa: F401
from volworker.context import RequestContext
from volworker_drivers.file.driver import FileDriver

Build = Callable[..., FileDriver]


@pytest.fixture
def build(tmp_path: pathlib.Path) -> Iterator[Build]:
    """Make a file driver: ``build(pools=[...], setup=True, **options)``;
    by default pools alpha and beta in tmp_path."""
    built: list[FileDriver] = []

    def _build(
        pools: list[str] | None = None, setup: bool = True, **options: Any
    ) -> FileDriver:
        if pools is None:
            pools = [f"{name}:{tmp_path / name}" for name in ("alpha", "beta")]
        config = file_config(tmp_path, "file1", file_pools=pools, **options)
        driver = FileDriver(config)
        built.append(driver)
        if setup:
            driver.do_setup(RequestContext.admin())
            driver.check_for_setup_error()
        return driver

    yield _build
    for driver in built:
        if driver._exports is not None:
            stop_exports(driver)


@pytest.fixture
def driver(build: Build) -> FileDriver:
    return build()


@pytest.fixture
def xfs_driver(build: Build, xfs_mount: pathlib.Path) -> FileDriver:  # noqa: F811
    """A driver whose one pool is on XFS with reflink."""
    return build(pools=[f"fast:{xfs_mount / uuid.uuid4().hex}"])
