"""A throwaway Ceph cluster for the tests of the rbd driver.

The session fixture ``ceph_cluster`` starts one with ``scripts/ceph`` (one
monitor, manager and OSD on 127.0.0.1, in memory) the first time a test asks
for it and stops it at the end of the session. Without Ceph (and without
root to install it) the tests that need it skip, and fail under CI=true.
``VOLWORKER_TEST_CEPH_CONF=/path/ceph.conf`` points them at a cluster already
running instead, such as one from ``scripts/ceph start DIR``.

The fixture exports ``CEPH_CONF``: clients started by the tests (qemu-io,
qemu-img) read their keyring from it, as a compute host does from
/etc/ceph.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "ceph"
EXISTING = "VOLWORKER_TEST_CEPH_CONF"
POOL = "volumes"
USER = "volworker"
START_TIMEOUT = 600
IN_CI = os.environ.get("CI") == "true"
#: a well-formed cephx key that no user of the cluster has
WRONG_KEY = "AQBnpSVnAAAAABAAYJtD0Nk5u6dc7jVqtXZ7yA=="


@dataclass(frozen=True)
class CephCluster:
    """Where the cluster is and who may use it."""

    conf: pathlib.Path
    pool: str = POOL
    user: str = USER

    def backend(self, **options: Any) -> dict[str, Any]:
        """The options of an rbd backend section on this cluster."""
        return {
            "volume_driver": "rbd",
            "rbd_pool": self.pool,
            "rbd_user": self.user,
            "rbd_ceph_conf": str(self.conf),
            "rados_connect_timeout": 10,
            "rados_connection_retries": 1,
            **options,
        }

    def altered_conf(
        self,
        directory: pathlib.Path,
        *,
        mon_host: str | None = None,
        key: str | None = None,
    ) -> pathlib.Path:
        """A copy of the configuration that names other monitors, or gives
        the user another key: a cluster that is down, a key that is wrong."""
        text = self.conf.read_text()
        if mon_host is not None:
            text = re.sub(r"(?m)^mon_host = .*$", f"mon_host = {mon_host}", text)
        if key is not None:
            keyring = directory / f"client.{self.user}.keyring"
            keyring.write_text(f"[client.{self.user}]\n\tkey = {key}\n")
            own = re.escape(str(self.conf.parent / f"client.{self.user}.keyring"))
            text = re.sub(f"(?m)^keyring = {own}$", f"keyring = {keyring}", text)
        path = directory / "ceph.conf"
        path.write_text(text)
        return path

    @contextlib.contextmanager
    def admin(self) -> Iterator[Any]:
        """An I/O context of the pool as client.admin, for what a test does
        behind the driver's back."""
        import rados

        client = rados.Rados(conffile=str(self.conf), rados_id="admin")
        client.connect(timeout=30)
        try:
            ioctx = client.open_ioctx(self.pool)
            try:
                yield ioctx
            finally:
                ioctx.close()
        finally:
            client.shutdown()

    def blocklist(self) -> str:
        """The cluster's blocklist (``ceph osd blocklist ls``), as JSON text."""
        import rados

        client = rados.Rados(conffile=str(self.conf), rados_id="admin")
        client.connect(timeout=30)
        try:
            ret, out, err = client.mon_command(
                '{"prefix": "osd blocklist ls", "format": "json"}', b""
            )
        finally:
            client.shutdown()
        assert ret == 0, err
        return bytes(out).decode()


class CephUnavailable(Exception):
    """scripts/ceph could not start a cluster; the message says why."""


@contextlib.contextmanager
def started(directory: pathlib.Path) -> Iterator[CephCluster]:
    """A throwaway cluster in ``directory`` (new or empty) while the block
    runs; CephUnavailable when it cannot be started."""
    try:
        done = subprocess.run(
            [str(SCRIPT), "start", str(directory)],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        _stop(directory)
        raise CephUnavailable(f"scripts/ceph start took over {START_TIMEOUT}s") from exc
    if done.returncode != 0:
        _stop(directory)
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise CephUnavailable(lines[-1] if lines else f"exit {done.returncode}")
    try:
        yield CephCluster(pathlib.Path(done.stdout.strip().splitlines()[-1]))
    finally:
        _stop(directory)


def _stop(directory: pathlib.Path) -> None:
    subprocess.run(
        [str(SCRIPT), "stop", str(directory)], capture_output=True, check=False
    )


@pytest.fixture(scope="session")
def ceph_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CephCluster]:
    given = os.environ.get(EXISTING)
    if given:
        os.environ.setdefault("CEPH_CONF", given)
        yield CephCluster(pathlib.Path(given))
        return
    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(started(tmp_path_factory.mktemp("ceph")))
        except CephUnavailable as exc:
            message = f"cannot start Ceph: {exc}"
            if IN_CI:
                pytest.fail(message + " (CI=true needs Ceph)")
            pytest.skip(message)
        os.environ["CEPH_CONF"] = str(cluster.conf)
        yield cluster
