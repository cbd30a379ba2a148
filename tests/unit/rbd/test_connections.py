"""Attach: the connection info Nova and os-brick read, and the record of
attached connectors in the image."""

from __future__ import annotations

import re
import uuid

from tests.ceph import CephCluster
from tests.unit.rbd.conftest import Build, Pool, volume
from volworker.context import RequestContext
from volworker.objects import Attachment


def test_connection_info(build: Build, ceph_cluster: CephCluster) -> None:
    secret = str(uuid.uuid4())
    driver = build(rbd_secret_uuid=secret)
    vol = volume()
    driver.create_volume(vol)
    info = driver.initialize_connection(vol, {"host": "compute-1"})
    # the monitor of the throwaway cluster, by its v1 address
    v1_port = re.search(r"v1:127\.0\.0\.1:(\d+)", ceph_cluster.conf.read_text())
    assert v1_port
    assert info == {
        "driver_volume_type": "rbd",
        "data": {
            "name": f"{ceph_cluster.pool}/volume-{vol.id}",
            "hosts": ["127.0.0.1"],
            "ports": [v1_port.group(1)],
            "cluster_name": "ceph",
            "auth_enabled": True,
            "auth_username": ceph_cluster.user,
            "secret_type": "ceph",
            "secret_uuid": secret,
            "volume_id": vol.id,
            "discard": True,
        },
    }
    assert driver.initialize_connection(vol, {"host": "compute-1"}) == info


def test_ensure_export_prunes_and_restores(build: Build, pool: Pool) -> None:
    driver = build()
    vol = volume()
    driver.create_volume(vol)
    driver.initialize_connection(vol, {"host": "gone"})
    kept = Attachment("a1", vol.id, {"host": "kept"})
    driver.ensure_export(RequestContext.admin(), vol.replace(attachments=[kept]))
    with pool.rbd.Image(pool.ioctx, vol.name, read_only=True) as image:
        keys = [key for key, _ in image.metadata_list()]
    assert keys == ["volworker.connector.kept"]


def test_a_clone_is_not_attached_where_its_source_is(build: Build, pool: Pool) -> None:
    """librbd copies an image's metadata into its clones."""
    driver = build()
    source, clone = volume(), volume()
    driver.create_volume(source)
    driver.initialize_connection(source, {"host": "compute-1"})
    driver.create_cloned_volume(clone, source)
    with pool.rbd.Image(pool.ioctx, clone.name, read_only=True) as image:
        assert list(image.metadata_list()) == []
