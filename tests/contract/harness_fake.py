"""Contract harness for the fake driver."""

from __future__ import annotations

import pathlib
from typing import Any

from tests.contract.harness import DriverHarness, make_config
from volworker.driver import VolumeDriver
from volworker_drivers.fake.driver import FakeDriver


class FakeHarness(DriverHarness):
    name = "fake"

    def build(self, tmp_path: pathlib.Path) -> VolumeDriver:
        config = make_config(
            tmp_path, "fake1", FakeDriver, fake_pools=["alpha", "beta"]
        )
        return self.setup(FakeDriver(config))

    def restart(self, driver: VolumeDriver, tmp_path: pathlib.Path) -> VolumeDriver:
        # NOTE: the fake backend's storage is the old instance's memory; the
        # new instance keeps the objects but, like a new process, no exports.
        assert isinstance(driver, FakeDriver)
        new = self.build(tmp_path)
        assert isinstance(new, FakeDriver)
        new.volumes, new.snapshots = driver.volumes, driver.snapshots
        new.unmanaged, new.unmanaged_snapshots = (
            driver.unmanaged,
            driver.unmanaged_snapshots,
        )
        return new

    def plant_volume(
        self, driver: VolumeDriver, name: str, size_gb: int
    ) -> dict[str, Any]:
        assert isinstance(driver, FakeDriver)
        driver.plant(name, size_gb)
        return {"source-name": name}

    def plant_snapshot(
        self, driver: VolumeDriver, volume_name: str, name: str
    ) -> dict[str, Any]:
        assert isinstance(driver, FakeDriver)
        src = driver.volumes[volume_name]
        driver.unmanaged_snapshots[name] = type(src)(src.pool, src.size, volume_name)
        return {"source-name": name}

    def backend_objects(self, driver: VolumeDriver) -> set[str]:
        assert isinstance(driver, FakeDriver)
        return {
            *driver.volumes,
            *driver.snapshots,
            *driver.unmanaged,
            *driver.unmanaged_snapshots,
        }
