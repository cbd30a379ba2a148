"""check_for_setup_error says exactly what is wrong."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import require_root
from tests.unit.file.conftest import Build
from tests.unit.file.helpers import created
from volworker import exception
from volworker.context import RequestContext
from volworker_drivers.file.driver import FileDriver


def _problem(driver: FileDriver) -> str:
    with pytest.raises(exception.VolumeBackendAPIException) as err:
        driver.check_for_setup_error()
    return str(err.value)


@pytest.fixture
def read_only(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A directory that is a read-only bind mount of itself."""
    require_root("a read-only bind mount")
    path = tmp_path / "ro"
    path.mkdir()
    subprocess.run(["mount", "--bind", path, path], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", path], check=True)
        yield path
    finally:
        subprocess.run(["umount", path], check=True)


@pytest.fixture
def only_qemu_img(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH holds qemu-img but no qemu-nbd."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    qemu_img = shutil.which("qemu-img")
    assert qemu_img
    (bin_dir / "qemu-img").symlink_to(qemu_img)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_a_good_backend_passes(driver: FileDriver) -> None:
    driver.check_for_setup_error()


def test_read_only_pool(build: Build, read_only: pathlib.Path) -> None:
    driver = build(pools=[f"ro:{read_only}"], setup=False)
    driver.do_setup(RequestContext.admin())
    message = _problem(driver)
    assert f"pool ro: {read_only} is on a read-only filesystem" in message


def test_pool_that_is_a_file(build: Build, tmp_path: pathlib.Path) -> None:
    (tmp_path / "plain").write_text("")
    driver = build(pools=[f"p:{tmp_path / 'plain'}"], setup=False)
    driver.do_setup(RequestContext.admin())
    assert f"pool p: {tmp_path / 'plain'} is not a directory" in _problem(driver)


def test_pool_removed_after_setup(driver: FileDriver, tmp_path: pathlib.Path) -> None:
    shutil.rmtree(tmp_path / "beta")
    assert f"pool beta: directory {tmp_path / 'beta'} does not exist" in _problem(
        driver
    )
    with pytest.raises(exception.VolumeBackendAPIException, match="pool beta"):
        created(driver, pool="beta")


def test_missing_qemu_nbd(build: Build, only_qemu_img: None) -> None:
    driver = build(setup=False)
    driver.do_setup(RequestContext.admin())
    message = _problem(driver)
    assert "qemu-nbd is not installed or not on PATH (install qemu-utils)" in message
    assert "qemu-img" not in message
    vol = created(driver)
    with pytest.raises(exception.VolumeBackendAPIException, match="install qemu-utils"):
        driver.initialize_connection(vol, {"host": "c"})
    assert driver.exports.exports() == []


def test_every_problem_is_named_at_once(
    build: Build, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    missing = tmp_path / "gone" / "pool"
    driver = build(pools=[f"ok:{tmp_path / 'ok'}", f"lost:{missing}"], setup=False)
    driver.do_setup(RequestContext.admin())
    message = _problem(driver)
    assert "qemu-img is not installed" in message
    assert "qemu-nbd is not installed" in message
    assert f"pool lost: directory {missing} does not exist" in message
    assert f"its parent {missing.parent} does not exist" in message
    assert "pool ok" not in message
    assert os.path.isdir(tmp_path / "ok")
