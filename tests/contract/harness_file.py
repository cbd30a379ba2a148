"""Contract harnesses for the file driver: pools on the test's own filesystem
(``file``, sparse copies) and pools on an XFS with reflink (``file-xfs``).

``XfsFileHarness`` needs the session fixture ``xfs_mount`` of
:mod:`tests.contract.xfs`. A harness names the fixtures it needs in
``fixtures`` and takes their values through :meth:`provide`, so the contract
conftest can hand them over generically::

    from tests.contract.xfs import xfs_mount  # noqa: F401

    @pytest.fixture(params=HARNESSES, ids=lambda h: h.name)
    def harness(request):
        h = request.param
        for name in getattr(h, "fixtures", ()):
            h.provide(name, request.getfixturevalue(name))
        return h
"""

from __future__ import annotations

import atexit
import os
import pathlib
from typing import Any

from tests.contract.harness import DriverHarness, make_config
from volworker.driver import BackendConfig, VolumeDriver
from volworker_drivers.file import nbd
from volworker_drivers.file.copy import clone_into
from volworker_drivers.file.driver import FileDriver
from volworker_drivers.file.names import SNAPSHOTS_DIR

GiB = 1024**3
POOLS = ("alpha", "beta")


def file_config(tmp_path: pathlib.Path, backend: str, **options: Any) -> BackendConfig:
    """A private configuration with one file backend set to ``options``."""
    return make_config(tmp_path, backend, FileDriver, **options)


def _file_driver(driver: VolumeDriver) -> FileDriver:
    assert isinstance(driver, FileDriver)
    return driver


def pool_paths(driver: VolumeDriver) -> list[pathlib.Path]:
    return [pathlib.Path(pool.path) for pool in _file_driver(driver).pools]


def stop_exports(driver: VolumeDriver) -> None:
    """Stop every NBD export the driver's backend has (test teardown)."""
    registry = _file_driver(driver).exports
    for export in registry.exports():
        nbd.stop(registry.pid_file(export), export.export_name)


_BUILT: list[FileDriver] = []


@atexit.register
def _stop_leftover_exports() -> None:
    # NOTE: a contract test that fails half-way may leave an export behind;
    # no qemu-nbd a harness started outlives the test run.
    for driver in _BUILT:
        stop_exports(driver)


class FileHarness(DriverHarness):
    name = "file"
    backend = "file1"
    fixtures: tuple[str, ...] = ()

    def provide(self, fixture: str, value: Any) -> None:
        raise AssertionError(f"{self.name} needs no fixture {fixture}")

    def pools_dir(self, tmp_path: pathlib.Path) -> pathlib.Path:
        return tmp_path / "pools"

    def build(self, tmp_path: pathlib.Path) -> VolumeDriver:
        base = self.pools_dir(tmp_path)
        base.mkdir(parents=True, exist_ok=True)
        config = file_config(
            tmp_path,
            self.backend,
            file_pools=[f"{name}:{base / name}" for name in POOLS],
        )
        return self.setup(FileDriver(config))

    def setup(self, driver: VolumeDriver) -> VolumeDriver:
        super().setup(driver)
        _BUILT.append(_file_driver(driver))
        return driver

    def restart(self, driver: VolumeDriver, tmp_path: pathlib.Path) -> VolumeDriver:
        return self.setup(FileDriver(driver.configuration))

    def close(self, driver: VolumeDriver) -> None:
        stop_exports(driver)

    def plant_volume(
        self, driver: VolumeDriver, name: str, size_gb: int
    ) -> dict[str, Any]:
        path = pool_paths(driver)[0] / name
        with open(path, "xb") as f:
            f.write(b"planted")
            f.truncate(size_gb * GiB)
        return {"source-name": name}

    def plant_snapshot(
        self, driver: VolumeDriver, volume_name: str, name: str
    ) -> dict[str, Any]:
        source = next(
            p / volume_name for p in pool_paths(driver) if (p / volume_name).exists()
        )
        snapshots = source.parent / SNAPSHOTS_DIR / volume_name
        snapshots.mkdir(parents=True, exist_ok=True)
        src = os.open(source, os.O_RDONLY)
        dst = os.open(snapshots / name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            clone_into(src, dst)
        finally:
            os.close(src)
            os.close(dst)
        return {"source-name": name}

    def backend_objects(self, driver: VolumeDriver) -> set[str]:
        found: set[str] = set()
        for pool in pool_paths(driver):
            found.update(
                p.name
                for p in pool.iterdir()
                if p.is_file() and not p.name.startswith(".")
            )
            snapshots = pool / SNAPSHOTS_DIR
            if snapshots.is_dir():
                found.update(
                    p.name for p in snapshots.glob("volume-*/*") if p.is_file()
                )
        return found


class XfsFileHarness(FileHarness):
    """The file driver on XFS with reflink: snapshots and clones are reflinks."""

    name = "file-xfs"
    fixtures = ("xfs_mount",)

    def __init__(self) -> None:
        self.mount: pathlib.Path | None = None

    def provide(self, fixture: str, value: Any) -> None:
        assert fixture == "xfs_mount", fixture
        self.mount = pathlib.Path(value)

    def pools_dir(self, tmp_path: pathlib.Path) -> pathlib.Path:
        assert self.mount is not None, "provide('xfs_mount', ...) first"
        # NOTE: tmp_path's name is unique in the session, so each test gets
        # pools of its own and a rebuild finds the same ones.
        return self.mount / tmp_path.name

    def build(self, tmp_path: pathlib.Path) -> VolumeDriver:
        driver = super().build(tmp_path)
        assert all(_file_driver(driver).reflink.values()), "no reflink on the XFS mount"
        return driver
