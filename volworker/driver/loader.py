"""Find a driver class by short name or import path, and build it."""

from __future__ import annotations

import importlib
import logging

from oslo_config import cfg
from stevedore import driver as stevedore_driver
from stevedore import exception as stevedore_exc

from volworker import exception
from volworker.driver.config import BackendConfig, register_backend
from volworker.driver.interface import VolumeDriver

__all__ = ["DRIVER_NAMESPACE", "load_driver", "resolve_driver_class"]

LOG = logging.getLogger(__name__)

DRIVER_NAMESPACE = "volworker.volume_drivers"


def _import_class(path: str) -> object:
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def resolve_driver_class(name: str) -> type[VolumeDriver]:
    """The driver class for a short name (``file``) or an import path."""
    try:
        if "." not in name and ":" not in name:
            manager: stevedore_driver.DriverManager[object] = (
                stevedore_driver.DriverManager(
                    DRIVER_NAMESPACE, name, invoke_on_load=False
                )
            )
            found = manager.driver
        else:
            found = _import_class(name)
    except (stevedore_exc.NoMatches, ImportError, AttributeError, ValueError) as exc:
        raise exception.VolworkerError(
            f"volume_driver {name!r} is neither a registered driver name nor "
            f"an importable class: {exc}"
        ) from exc
    if not (isinstance(found, type) and issubclass(found, VolumeDriver)):
        raise exception.VolworkerError(
            f"volume_driver {name!r} is not a volworker VolumeDriver class"
        )
    return found


def load_driver(
    conf: cfg.ConfigOpts,
    backend: str,
    *,
    host: str,
    state_path: str,
    incarnation: str = "-",
) -> VolumeDriver:
    """Register ``backend``'s options and build its driver (no setup yet)."""
    register_backend(conf, backend)
    driver_cls = resolve_driver_class(conf[backend].volume_driver)
    register_backend(conf, backend, driver_cls.get_driver_options())
    configuration = BackendConfig(
        conf, backend, host=host, state_path=state_path, incarnation=incarnation
    )
    LOG.info(
        "Backend %s: driver %s %s", backend, driver_cls.__name__, driver_cls.VERSION
    )
    return driver_cls(configuration)
