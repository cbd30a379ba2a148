"""The driver contract and the means to load drivers."""

from volworker.driver.config import BackendConfig, register_backend
from volworker.driver.interface import (
    CORE_METHODS,
    FEATURE_METHODS,
    Feature,
    ModelUpdate,
    ModelUpdates,
    VolumeDriver,
    registered_drivers,
    volumedriver,
)

__all__ = [
    "CORE_METHODS",
    "FEATURE_METHODS",
    "BackendConfig",
    "Feature",
    "ModelUpdate",
    "ModelUpdates",
    "VolumeDriver",
    "register_backend",
    "registered_drivers",
    "volumedriver",
]
