"""Check that driver classes implement the contract they claim."""

from __future__ import annotations

from dataclasses import dataclass, field

from volworker.driver.interface import (
    CORE_METHODS,
    FEATURE_METHODS,
    Feature,
    VolumeDriver,
)

__all__ = ["Report", "check_driver"]

_REQUIRED_ATTRIBUTES = ("VERSION", "VENDOR_NAME", "STORAGE_PROTOCOL")


@dataclass
class Report:
    """What one driver class lacks; compliant when ``problems`` is empty."""

    name: str
    features: list[str]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def compliant(self) -> bool:
        return not self.problems


def _overrides(cls: type[VolumeDriver], method: str) -> bool:
    impl = getattr(cls, method, None)
    if impl is None or method in getattr(cls, "__abstractmethods__", ()):
        return False
    return impl is not getattr(VolumeDriver, method)


def check_driver(name: str, cls: type[VolumeDriver]) -> Report:
    """Name every core method, declared feature method and basic attribute
    that ``cls`` is missing."""
    declared = set(cls.features)
    report = Report(name, sorted(f.value for f in declared))
    for attr in _REQUIRED_ATTRIBUTES:
        if getattr(cls, attr) == getattr(VolumeDriver, attr):
            report.problems.append(f"attribute {attr} is not set")
    for method in CORE_METHODS:
        if not _overrides(cls, method):
            report.problems.append(f"missing core method {method}()")
    for feature, methods in FEATURE_METHODS.items():
        done = [m for m in methods if _overrides(cls, m)]
        if feature in declared:
            report.problems.extend(
                f"declares {feature.value} but lacks {m}()"
                for m in methods
                if m not in done
            )
        elif done and feature is not Feature.CLONE_IMAGE:
            report.notes.append(
                f"implements {', '.join(done)} without declaring {feature.value}"
            )
    return report
