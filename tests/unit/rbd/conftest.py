"""Fixtures of the rbd driver's tests: drivers on the session's Ceph cluster
(tests/ceph.py), each test on an emptied pool, and a view of the pool as
client.admin to look behind the driver."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.ceph import CephCluster
from tests.contract.harness import make_config
from tests.contract.harness_rbd import objects, purge
from volworker.context import RequestContext
from volworker.objects import Snapshot, Volume, VolumeType
from volworker_drivers.rbd.driver import RBDDriver

Build = Callable[..., RBDDriver]
GiB = 1024**3
MiB = 1024**2


class Pool:
    """The test pool as client.admin sees it."""

    def __init__(self, ioctx: Any) -> None:
        import rbd

        self.ioctx = ioctx
        self.rbd = rbd

    def names(self) -> set[str]:
        return set(self.rbd.RBD().list(self.ioctx))

    def objects(self) -> set[str]:
        return objects(self.ioctx)

    def snapshots(self, image: str) -> set[str]:
        with self.rbd.Image(self.ioctx, image, read_only=True) as img:
            return {s["name"] for s in img.list_snaps()}

    def parent(self, image: str) -> str | None:
        with self.rbd.Image(self.ioctx, image, read_only=True) as img:
            try:
                spec = img.get_parent_image_spec()
            except self.rbd.ImageNotFound:
                return None
        return f"{spec['image_name']}@{spec['snap_name']}"

    def write(self, image: str, data: bytes, offset: int = 0) -> None:
        with self.rbd.Image(self.ioctx, image) as img:
            img.write(data, offset)

    def read(self, image: str, length: int, offset: int = 0) -> bytes:
        with self.rbd.Image(self.ioctx, image, read_only=True) as img:
            return bytes(img.read(offset, length))

    def notes(self) -> list[str]:
        return [
            key
            for key, _ in self.rbd.RBD().pool_metadata_list(self.ioctx)
            if key.startswith("volworker.collect.")
        ]


@pytest.fixture
def pool(ceph_cluster: CephCluster) -> Iterator[Pool]:
    with ceph_cluster.admin() as ioctx:
        purge(ioctx)
        yield Pool(ioctx)
        purge(ioctx)


@pytest.fixture
def build(
    ceph_cluster: CephCluster, tmp_path: pathlib.Path, pool: Pool
) -> Iterator[Build]:
    """Make an rbd driver on the test pool: ``build(setup=True, **options)``;
    ``host`` and ``incarnation`` name the worker it is in."""
    built: list[RBDDriver] = []

    def _build(
        setup: bool = True,
        *,
        host: str | None = None,
        incarnation: str = "-",
        **options: Any,
    ) -> RBDDriver:
        settings = ceph_cluster.backend(**options)
        del settings["volume_driver"]
        config = make_config(tmp_path, "rbd1", RBDDriver, **settings)
        # a host of its own: a driver fences the previous instance of its host
        config.host = host or f"test-{uuid.uuid4().hex[:8]}@rbd1"
        config.instance = f"{config.host}/{incarnation}"
        driver = RBDDriver(config)
        built.append(driver)
        if setup:
            driver.do_setup(RequestContext.admin())
            driver.check_for_setup_error()
        return driver

    yield _build
    for driver in built:
        driver.close()


@pytest.fixture
def driver(build: Build) -> RBDDriver:
    return build()


def volume(size: int = 1, multiattach: bool = False, **fields: Any) -> Volume:
    vtype = VolumeType("multi", {"multiattach": "<is> True"}) if multiattach else None
    return Volume(
        id=str(uuid.uuid4()),
        size=size,
        host="test-host@rbd1",
        volume_type=vtype,
        **fields,
    )


def snapshot(of: Volume) -> Snapshot:
    return Snapshot(id=str(uuid.uuid4()), volume_id=of.id, volume=of)
