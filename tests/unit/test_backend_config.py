"""Backend sections: [backend_defaults] fallback and driver loading."""

from __future__ import annotations

import pytest
from oslo_config import cfg

from volworker import exception
from volworker.driver import loader
from volworker_drivers.fake.driver import FakeDriver


@pytest.fixture
def conf(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "volworker.conf"
    path.write_text(
        "[backend_defaults]\n"
        "reserved_percentage = 10\n"
        "fake_pool_capacity_gb = 50\n"
        "[b1]\n"
        "volume_driver = fake\n"
        "reserved_percentage = 20\n"
        "[b2]\n"
        "volume_driver = volworker_drivers.fake.driver:FakeDriver\n"
        "volume_backend_name = gold\n"
    )
    c = cfg.ConfigOpts()
    c(["--config-file", str(path)], project="volworker-test")
    return c


def test_section_wins_over_defaults(conf, tmp_path) -> None:  # type: ignore[no-untyped-def]
    b1 = loader.load_driver(conf, "b1", host="h", state_path=str(tmp_path))
    b2 = loader.load_driver(conf, "b2", host="h", state_path=str(tmp_path))
    assert isinstance(b1, FakeDriver) and isinstance(b2, FakeDriver)
    assert b1.configuration.reserved_percentage == 20
    assert b2.configuration.reserved_percentage == 10
    assert b1.configuration.fake_pool_capacity_gb == 50
    assert b1.configuration.max_over_subscription_ratio == 20.0


def test_backend_name_and_host(conf, tmp_path) -> None:  # type: ignore[no-untyped-def]
    b1 = loader.load_driver(conf, "b1", host="h", state_path=str(tmp_path))
    b2 = loader.load_driver(conf, "b2", host="h", state_path=str(tmp_path))
    assert b1.configuration.backend_name == "b1"
    assert b2.configuration.backend_name == "gold"
    assert b2.configuration.host == "h@b2"
    assert b2.configuration.state_dir == str(tmp_path / "b2")


def test_loading_twice_is_harmless(conf, tmp_path) -> None:  # type: ignore[no-untyped-def]
    loader.load_driver(conf, "b1", host="h", state_path=str(tmp_path))
    again = loader.load_driver(conf, "b1", host="h", state_path=str(tmp_path))
    assert again.configuration.reserved_percentage == 20


@pytest.mark.parametrize("name", ["nosuch", "nosuch.module:Driver", "os.path:join"])
def test_unknown_driver_is_named(name: str) -> None:
    with pytest.raises(exception.VolworkerError, match=name.split(":")[0]):
        loader.resolve_driver_class(name)
