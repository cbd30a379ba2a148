"""The contract suite runs every test against every driver harness."""

from __future__ import annotations

import dataclasses
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.contract.harness import DriverHarness
from tests.contract.harness_fake import FakeHarness
from tests.contract.harness_file import FileHarness, XfsFileHarness
from tests.contract.harness_rbd import RbdHarness
from tests.contract.xfs import xfs_mount  # noqa: F401 - a fixture for file-xfs
from volworker.driver import Feature, VolumeDriver
from volworker.objects import Snapshot, Volume

HARNESSES: list[DriverHarness] = [
    FakeHarness(),
    FileHarness(),
    XfsFileHarness(),
    RbdHarness(),
]

GiB = 1024**3


@pytest.fixture(params=HARNESSES, ids=lambda h: h.name)
def harness(request: pytest.FixtureRequest) -> DriverHarness:
    """A driver's harness, given the fixtures it names (e.g. xfs_mount)."""
    chosen: DriverHarness = request.param
    for name in chosen.fixtures:
        chosen.provide(name, request.getfixturevalue(name))
    return chosen


class Backend:
    """A driver under test, with the objects a test made on it.

    Connections a test opens are closed afterwards, so no export outlives
    its test.
    """

    def __init__(self, harness: DriverHarness, driver: VolumeDriver) -> None:
        self.harness = harness
        self.driver = driver
        self.attached: dict[str, tuple[Volume, dict[str, Any]]] = {}
        #: what the driver saved per initiator, kept as the worker keeps it
        self.initiator_data: dict[str, dict[str, str]] = {}

    def require(self, feature: Feature) -> None:
        if not self.driver.supports(feature):
            pytest.skip(f"{self.harness.name} does not declare {feature.value}")

    def volume(self, size: int = 1, pool: str | None = None, **fields: Any) -> Volume:
        host = self.driver.configuration.host + (f"#{pool}" if pool else "")
        return Volume(id=str(uuid.uuid4()), size=size, host=host, **fields)

    def create(self, size: int = 1, pool: str | None = None) -> Volume:
        volume = self.volume(size, pool)
        return apply(volume, self.driver.create_volume(volume))

    def snapshot(self, volume: Volume) -> Snapshot:
        snapshot = Snapshot(id=str(uuid.uuid4()), volume_id=volume.id, volume=volume)
        return apply(snapshot, self.driver.create_snapshot(snapshot))

    def attach(self, volume: Volume, host: str = "contract-client") -> dict[str, Any]:
        initiator = f"iqn.2026-11.test:{host}"
        connector = {"host": host, "initiator": initiator}
        saved = self.initiator_data.get(initiator)
        info = self.driver.initialize_connection(volume, connector, saved)
        updates = info.pop("initiator_updates", None) or {}
        kept = self.initiator_data.setdefault(initiator, {})
        kept.update(updates.get("set_values") or {})
        for key in updates.get("remove_values") or []:
            kept.pop(key, None)
        self.attached[f"{volume.id}/{host}"] = (volume, connector)
        return info

    def detach(self, volume: Volume, host: str = "contract-client") -> None:
        _, connector = self.attached.pop(f"{volume.id}/{host}")
        self.driver.terminate_connection(volume, connector)

    def close(self) -> None:
        for volume, connector in list(self.attached.values()):
            self.driver.terminate_connection(volume, connector)
        self.attached.clear()
        self.harness.close(self.driver)


def apply(obj: Any, update: dict[str, Any] | None) -> Any:
    """Apply a driver's model update to the object it returned it for.

    A model update may only name fields the object has: the worker stores
    nothing else.
    """
    assert update is None or isinstance(update, dict), update
    if not update:
        return obj
    known = {f.name for f in dataclasses.fields(obj)}
    assert set(update) <= known, f"unknown model update keys {set(update) - known}"
    return obj.replace(**update)


@pytest.fixture
def backend(harness: DriverHarness, tmp_path: pathlib.Path) -> Iterator[Backend]:
    b = Backend(harness, harness.build(tmp_path))
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def data_backend(backend: Backend) -> Backend:
    """A backend whose connections carry data a client (qemu over NBD or
    RBD) can read and write."""
    backend.require(Feature.DATA_PATH)
    return backend
