"""How the contract suite builds each driver and reaches behind it.

A harness knows one driver: it builds a ready driver (do_setup and
check_for_setup_error done) in a test's temporary directory, and does the few
things a test needs that the contract itself does not offer, such as placing an
object on the backend that the worker does not manage.
"""

from __future__ import annotations

import abc
import pathlib
from typing import Any

from oslo_config import cfg

from volworker.context import RequestContext
from volworker.driver import BackendConfig, VolumeDriver, register_backend


def make_config(
    tmp_path: pathlib.Path, backend: str, driver_cls: type[VolumeDriver], **options: Any
) -> BackendConfig:
    """A private ConfigOpts with one backend section set to ``options``."""
    conf = cfg.ConfigOpts()
    # NOTE: option defaults such as file_pools' refer to $state_path.
    conf.register_opt(cfg.StrOpt("state_path", default=str(tmp_path)))
    conf([], project="volworker-test")
    register_backend(conf, backend)
    register_backend(conf, backend, driver_cls.get_driver_options())
    for name, value in options.items():
        conf.set_override(name, value, group=backend)
    return BackendConfig(conf, backend, host="test-host", state_path=str(tmp_path))


class DriverHarness(abc.ABC):
    #: pytest id of the harness
    name: str
    #: pytest fixtures the harness needs, handed over through provide()
    fixtures: tuple[str, ...] = ()

    def provide(self, fixture: str, value: Any) -> None:
        """Take the value of one of ``fixtures``."""
        setattr(self, fixture, value)

    def close(self, driver: VolumeDriver) -> None:  # noqa: B027 - optional hook
        """Release what the test's driver holds outside the process."""

    @abc.abstractmethod
    def build(self, tmp_path: pathlib.Path) -> VolumeDriver:
        """A driver whose do_setup and check_for_setup_error have run."""

    @abc.abstractmethod
    def plant_volume(
        self, driver: VolumeDriver, name: str, size_gb: int
    ) -> dict[str, Any]:
        """Put an unmanaged volume on the backend; return its reference."""

    @abc.abstractmethod
    def plant_snapshot(
        self, driver: VolumeDriver, volume_name: str, name: str
    ) -> dict[str, Any]:
        """Put an unmanaged snapshot of a volume on the backend; return its
        reference."""

    @abc.abstractmethod
    def backend_objects(self, driver: VolumeDriver) -> set[str]:
        """Names of every volume and snapshot the backend holds."""

    def restart(self, driver: VolumeDriver, tmp_path: pathlib.Path) -> VolumeDriver:
        """A new driver on the same backend, as after a worker restart."""
        return self.build(tmp_path)

    def setup(self, driver: VolumeDriver) -> VolumeDriver:
        driver.do_setup(RequestContext.admin())
        driver.check_for_setup_error()
        return driver
