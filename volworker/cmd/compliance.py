"""``volworker-compliance``: check every registered driver against the contract.

Loads each driver named under the ``volworker.volume_drivers`` entry points
(plus any import paths given), then reports per registered driver class every
missing method. Exits 1 when any driver is not compliant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from stevedore import extension

from volworker.driver import VolumeDriver, compliance, loader, registered_drivers

__all__ = ["main"]


def _load_all(extra: Sequence[str]) -> tuple[dict[str, type[VolumeDriver]], list[str]]:
    """Import every driver so that its @volumedriver registration runs.

    Returns the drivers to check (the registered ones and those named in
    ``extra``) and the errors met while loading.
    """
    errors: list[str] = []
    drivers: dict[str, type[VolumeDriver]] = {}

    def on_failure(_manager: Any, entrypoint: Any, exc: BaseException) -> None:
        errors.append(f"cannot load driver entry point {entrypoint}: {exc}")

    extension.ExtensionManager(
        loader.DRIVER_NAMESPACE,
        invoke_on_load=False,
        on_load_failure_callback=on_failure,
    )
    for path in extra:
        try:
            drivers[path] = loader.resolve_driver_class(path)
        except Exception as exc:
            errors.append(str(exc))
    drivers.update(registered_drivers())
    return drivers, errors


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="volworker-compliance",
        description="Check registered volume drivers against the driver contract.",
    )
    parser.add_argument(
        "drivers",
        nargs="*",
        help="more driver classes to check, registered or not (module:Class)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)

    drivers, errors = _load_all(args.drivers)
    reports = [
        compliance.check_driver(name, cls) for name, cls in sorted(drivers.items())
    ]
    if args.format == "json":
        json.dump(
            {"errors": errors, "drivers": [vars(r) for r in reports]},
            sys.stdout,
            indent=2,
        )
        print()
    else:
        for line in errors:
            print(f"ERROR  {line}")
        for report in reports:
            verdict = "compliant" if report.compliant else "NOT COMPLIANT"
            features = ", ".join(report.features) or "none"
            print(f"{report.name}: {verdict} (features: {features})")
            for problem in report.problems:
                print(f"    missing: {problem}")
            for note in report.notes:
                print(f"    note: {note}")
        if not reports:
            print("no drivers are registered")
    ok = reports and not errors and all(r.compliant for r in reports)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
