"""The compliance check names what a driver lacks."""

from __future__ import annotations

import subprocess
import sys

from volworker.driver import Feature, VolumeDriver
from volworker.driver.compliance import check_driver
from volworker_drivers.fake.driver import FakeDriver


class _Partial(FakeDriver):
    features = frozenset({Feature.CLONE_IMAGE, Feature.REVERT_TO_SNAPSHOT})


class _Bare(VolumeDriver):
    def do_setup(self, context):  # type: ignore[no-untyped-def]
        pass


def test_fake_is_compliant() -> None:
    report = check_driver("fake", FakeDriver)
    assert report.compliant, report.problems


def test_declared_feature_without_its_method_is_named() -> None:
    report = check_driver("partial", _Partial)
    assert report.problems == ["declares clone_image but lacks clone_image()"]


def test_missing_core_methods_and_attributes_are_named() -> None:
    report = check_driver("bare", _Bare)
    assert "missing core method create_volume()" in report.problems
    assert "missing core method do_setup()" not in report.problems
    assert "attribute VERSION is not set" in report.problems
    assert not report.compliant


def test_command_reports_every_driver_and_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "volworker.cmd.compliance"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FakeDriver: compliant" in done.stdout
    assert "FileDriver: compliant" in done.stdout


def test_command_fails_for_a_broken_driver() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "volworker.cmd.compliance",
            "tests.unit.test_compliance:_Partial",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "_Partial: NOT COMPLIANT" in done.stdout
    assert "lacks clone_image()" in done.stdout
