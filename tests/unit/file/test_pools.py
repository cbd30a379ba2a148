"""file_pools: parsing, the default pool, and making pool directories."""

from __future__ import annotations

import pathlib

import pytest

from tests.contract.harness_file import file_config
from tests.unit.file.conftest import Build
from tests.unit.file.helpers import created, volume, volume_path
from volworker import exception
from volworker.context import RequestContext
from volworker_drivers.file.driver import FileDriver
from volworker_drivers.file.pools import Pool, parse_pools


def test_named_and_bare_items() -> None:
    pools = parse_pools(["gold:/srv/gold", " /srv/plain/silver/ ", ""])
    assert pools == [Pool("gold", "/srv/gold"), Pool("silver", "/srv/plain/silver")]


@pytest.mark.parametrize(
    "items, words",
    [
        ([], "no pool"),
        (["relative/dir"], "neither"),
        (["gold:relative"], "not an absolute path"),
        (["g#1:/srv/a"], "pool name"),
        (["/srv/a:b"], "pool name"),
        (["a:/srv/one", "a:/srv/two"], "name 'a'"),
        (["a:/srv/one", "b:/srv/one/"], "path"),
    ],
)
def test_malformed_items(items: list[str], words: str) -> None:
    with pytest.raises(exception.InvalidInput, match=words):
        parse_pools(items)


def test_only_the_first_colon_splits() -> None:
    assert parse_pools(["ab:/srv/a:b"]) == [Pool("ab", "/srv/a:b")]


def test_pool_dirs_are_made_when_the_parent_exists(
    build: Build, tmp_path: pathlib.Path
) -> None:
    driver = build(pools=[f"one:{tmp_path / 'one'}", str(tmp_path / "two")])
    assert (tmp_path / "one").is_dir() and (tmp_path / "two").is_dir()
    assert [p["pool_name"] for p in driver.get_volume_stats(True)["pools"]] == [
        "one",
        "two",
    ]


def test_missing_parent_is_not_created(build: Build, tmp_path: pathlib.Path) -> None:
    driver = build(pools=[str(tmp_path / "no" / "such" / "pool")], setup=False)
    driver.do_setup(RequestContext.admin())
    assert not (tmp_path / "no").exists()
    with pytest.raises(exception.VolumeBackendAPIException) as err:
        driver.check_for_setup_error()
    assert "its parent" in str(err.value) and str(tmp_path / "no" / "such") in str(
        err.value
    )


def test_default_pool_and_unknown_pool(driver: FileDriver) -> None:
    vol = created(driver)  # no '#pool' in host
    assert volume_path(driver, vol).parent.name == "alpha"
    beta = created(driver, pool="beta")
    assert volume_path(driver, beta).parent.name == "beta"
    with pytest.raises(exception.InvalidInput, match="not one of"):
        driver.create_volume(volume(driver, pool="gamma"))


def test_default_file_pools_is_under_state_path(tmp_path: pathlib.Path) -> None:
    config = file_config(tmp_path, "file1")
    driver = FileDriver(config)
    driver.do_setup(RequestContext.admin())
    assert driver.pools.default == Pool("volumes", str(tmp_path / "volumes"))
    assert (tmp_path / "volumes").is_dir()


def test_pool_symlinked_by_the_admin_is_resolved(
    build: Build, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    driver = build(pools=[f"p:{tmp_path / 'link'}"])
    vol = created(driver)
    assert (tmp_path / "real" / vol.name).is_file()


def test_bad_port_range_fails_setup(build: Build) -> None:
    driver = build(setup=False, nbd_port_range="10999-10809")
    with pytest.raises(exception.VolumeBackendAPIException, match="nbd_port_range"):
        driver.do_setup(RequestContext.admin())
