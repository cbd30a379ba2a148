"""Objects and small checks the file driver's unit tests share."""

from __future__ import annotations

import os
import pathlib
import subprocess
import uuid

from tests.contract import nbdclient
from volworker.objects import Snapshot, Volume
from volworker_drivers.file.driver import FileDriver

GiB = 1024**3
MiB = 1024**2


def volume(driver: FileDriver, size: int = 1, pool: str | None = None) -> Volume:
    host = driver.configuration.host + (f"#{pool}" if pool else "")
    return Volume(id=str(uuid.uuid4()), size=size, host=host)


def created(driver: FileDriver, size: int = 1, pool: str | None = None) -> Volume:
    vol = volume(driver, size, pool)
    driver.create_volume(vol)
    return vol


def snapshot(driver: FileDriver, vol: Volume, create: bool = True) -> Snapshot:
    snap = Snapshot(id=str(uuid.uuid4()), volume_id=vol.id, volume=vol)
    if create:
        driver.create_snapshot(snap)
    return snap


def pool_dir(driver: FileDriver, name: str | None = None) -> pathlib.Path:
    return pathlib.Path(driver.pools.get(name).path)


def volume_path(driver: FileDriver, vol: Volume) -> pathlib.Path:
    return pool_dir(driver, vol.pool) / vol.name


def snapshot_path(driver: FileDriver, snap: Snapshot) -> pathlib.Path:
    return (
        pool_dir(driver, snap.volume.pool) / ".snapshots" / snap.volume.name / snap.name
    )


def write(path: pathlib.Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: pathlib.Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)


def nbd_size(info: dict) -> int:
    return nbdclient.size(info)


def nbd_reachable(info: dict) -> bool:
    return nbdclient.reachable(info)


def nbd_io(info: dict, command: str) -> str:
    """Run one qemu-io command against the export; its output."""
    done = nbdclient.qemu_io(info, command)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed" not in done.stdout, done.stdout
    return done.stdout


def qcow2_over_a_host_file(
    directory: pathlib.Path, host_file: pathlib.Path
) -> pathlib.Path:
    """A qcow2 image whose data is ``host_file``: an external data file
    (``data_file_raw``), the OSSA-2024-001 attack."""
    image = directory / f"{uuid.uuid4()}.qcow2"
    data_file = directory / f"{image.stem}.data"
    options = f"data_file={data_file},data_file_raw=on"
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", "-o", options, str(image), "1M"],
        check=True,
        capture_output=True,
    )
    # qemu-img made the data file; the image now points at the host's file.
    data_file.unlink()
    data_file.symlink_to(host_file)
    return image
