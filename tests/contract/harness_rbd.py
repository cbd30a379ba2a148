"""Contract harness for the rbd driver, on the session's throwaway Ceph
cluster (``ceph_cluster`` of :mod:`tests.ceph`).

The tests share one pool, so the harness empties it when a test closes
(clones before what they hang from, snapshots before images): each test
starts from an empty pool, as a file test starts from an empty directory.
"""

from __future__ import annotations

import contextlib
import pathlib
import time
from typing import Any

from tests.ceph import CephCluster
from tests.contract.harness import DriverHarness, make_config
from volworker.driver import VolumeDriver
from volworker_drivers.rbd.driver import RBDDriver

GiB = 1024**3
PURGE_PATIENCE = 20.0


def _rbd_driver(driver: VolumeDriver) -> RBDDriver:
    assert isinstance(driver, RBDDriver)
    return driver


def _drop_snapshots(image: Any, rbd: Any) -> None:
    for snap in list(image.list_snaps()):
        try:
            if snap["namespace"] != rbd.RBD_SNAP_NAMESPACE_TYPE_USER:
                image.remove_snap_by_id(snap["id"])  # half removed by a kill
                continue
            if image.is_protected_snap(snap["name"]):
                image.unprotect_snap(snap["name"])
            image.remove_snap(snap["name"])
        except rbd.ImageBusy:
            continue  # a clone hangs from it; it goes in a later pass


def purge(ioctx: Any) -> None:
    """Remove every group, image, snapshot and note of the pool.

    An image a killed worker had open stays busy until its watch times out
    (5 s on the throwaway cluster), so passes go on until then.
    """
    import rbd

    api = rbd.RBD()
    for group in api.group_list(ioctx):
        # with its group snapshots, which image snapshots cannot remove
        api.group_remove(ioctx, group)
    deadline = time.monotonic() + PURGE_PATIENCE
    while api.list(ioctx) and time.monotonic() < deadline:
        for name in api.list(ioctx):
            try:
                with rbd.Image(ioctx, name) as image:
                    _drop_snapshots(image, rbd)
            except rbd.ImageNotFound:
                pass  # half made or half removed: remove finishes it
            try:
                api.remove(ioctx, name)
            except (rbd.ImageNotFound, rbd.ImageBusy, rbd.ImageHasSnapshots):
                continue
        time.sleep(0.2)
    for name in api.list(ioctx):
        # an OSD may keep the watch of a killed client for long; the
        # trash takes the image out of the next test's way
        api.trash_move(ioctx, name, 0)
    for entry in api.trash_list(ioctx):
        with contextlib.suppress(rbd.Error):
            api.trash_remove(ioctx, entry["id"], force=True)
    for key, _ in list(api.pool_metadata_list(ioctx)):
        if key.startswith("volworker."):
            api.pool_metadata_remove(ioctx, key)


def objects(ioctx: Any) -> set[str]:
    """Names of every image of the pool and of every snapshot of each."""
    import rbd

    found: set[str] = set()
    for name in rbd.RBD().list(ioctx):
        found.add(name)
        with rbd.Image(ioctx, name, read_only=True) as image:
            found.update(snap["name"] for snap in image.list_snaps())
    return found


class RbdHarness(DriverHarness):
    name = "rbd"
    backend = "rbd1"
    fixtures = ("ceph_cluster",)

    def __init__(self) -> None:
        self.ceph: CephCluster | None = None
        self._built: list[RBDDriver] = []

    def provide(self, fixture: str, value: Any) -> None:
        assert fixture == "ceph_cluster", fixture
        self.ceph = value

    @property
    def cluster(self) -> CephCluster:
        assert self.ceph is not None, "provide('ceph_cluster', ...) first"
        return self.ceph

    def build(self, tmp_path: pathlib.Path) -> VolumeDriver:
        options = self.cluster.backend()
        del options["volume_driver"]
        config = make_config(tmp_path, self.backend, RBDDriver, **options)
        return self.setup(RBDDriver(config))

    def setup(self, driver: VolumeDriver) -> VolumeDriver:
        super().setup(driver)
        self._built.append(_rbd_driver(driver))
        return driver

    def restart(self, driver: VolumeDriver, tmp_path: pathlib.Path) -> VolumeDriver:
        return self.setup(RBDDriver(driver.configuration))

    def close(self, driver: VolumeDriver) -> None:
        for built in self._built:
            built.close()
        self._built.clear()
        with self.cluster.admin() as ioctx:
            purge(ioctx)

    def plant_volume(
        self, driver: VolumeDriver, name: str, size_gb: int
    ) -> dict[str, Any]:
        import rbd

        with self.cluster.admin() as ioctx:
            rbd.RBD().create(ioctx, name, size_gb * GiB, old_format=False)
            with rbd.Image(ioctx, name) as image:
                image.write(b"planted", 0)
        return {"source-name": name}

    def plant_snapshot(
        self, driver: VolumeDriver, volume_name: str, name: str
    ) -> dict[str, Any]:
        import rbd

        with self.cluster.admin() as ioctx, rbd.Image(ioctx, volume_name) as image:
            image.create_snap(name)
        return {"source-name": name}

    def backend_objects(self, driver: VolumeDriver) -> set[str]:
        with self.cluster.admin() as ioctx:
            return objects(ioctx)
