"""What reflinks buy the file driver: snapshot and clone time against size.

On a fresh XFS (reflink=1) loop mount it fills a 1 GiB and a 10 GiB volume
with data (no holes), then times, for each:

- ``create_snapshot`` and ``create_cloned_volume`` through the file driver
  (reflinks; several repeats, each a new snapshot or clone);
- a plain full copy of the same file (read/write, then fsync), the baseline
  of what a copy costs on this disk, measured in the same run.

It prints a markdown table and a JSON document: min/median/max seconds, the
ratio 10 GiB / 1 GiB (about 1 for reflinks, about 10 for copies) and the
ratio of a full copy to a snapshot. Needs root (loop mount); the mount is
always removed.

    sudo .venv/bin/python bench/snapshot_clone.py [--sizes 1,10] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests.contract.harness_file import file_config
from tests.contract.xfs import mounted_xfs
from volworker.context import RequestContext
from volworker.objects import Snapshot, Volume
from volworker_drivers.file.copy import REFLINK
from volworker_drivers.file.driver import FileDriver

GiB = 1024**3
BLOCK = 4 * 1024**2


def _driver(pool: pathlib.Path, state: pathlib.Path) -> FileDriver:
    driver = FileDriver(file_config(state, "bench", file_pools=[f"xfs:{pool}"]))
    driver.do_setup(RequestContext.admin())
    driver.check_for_setup_error()
    return driver


def _fill(path: str, size: int) -> None:
    """Write data over the whole file: one random block, repeated."""
    block = os.urandom(BLOCK)
    fd = os.open(path, os.O_WRONLY)
    try:
        for offset in range(0, size, BLOCK):
            os.pwrite(fd, block, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def _full_copy(src: str, dst: str) -> None:
    """The baseline: every byte read and written, then made durable."""
    with open(src, "rb", buffering=0) as fin, open(dst, "xb", buffering=0) as fout:
        while chunk := fin.read(8 * 1024**2):
            fout.write(chunk)
        os.fsync(fout.fileno())


def _times(action: Callable[[int], None], repeats: int) -> list[float]:
    found = []
    for i in range(repeats):
        started = time.perf_counter()
        action(i)
        found.append(time.perf_counter() - started)
    return found


def _summary(times: list[float]) -> dict[str, float]:
    return {
        "min": min(times),
        "median": statistics.median(times),
        "max": max(times),
        "repeats": len(times),
    }


def _measure(
    driver: FileDriver, size_gb: int, args: argparse.Namespace
) -> dict[str, Any]:
    host = driver.configuration.host
    volume = Volume(id=str(uuid.uuid4()), size=size_gb, host=host)
    driver.create_volume(volume)
    path = os.path.join(driver.pools.default.path, volume.name)
    _fill(path, size_gb * GiB)

    def snapshot(_: int) -> None:
        driver.create_snapshot(Snapshot(str(uuid.uuid4()), volume.id, volume))

    def clone(_: int) -> None:
        target = Volume(id=str(uuid.uuid4()), size=size_gb, host=host)
        driver.create_cloned_volume(target, volume)

    def full_copy(i: int) -> None:
        target = f"{path}.copy{i}"
        try:
            _full_copy(path, target)
        finally:
            os.unlink(target)

    result = {
        "size_gb": size_gb,
        "snapshot": _summary(_times(snapshot, args.repeats)),
        "clone": _summary(_times(clone, args.repeats)),
        "full_copy": _summary(_times(full_copy, args.copy_repeats)),
    }
    assert driver.last_copy_method == REFLINK, driver.last_copy_method
    return result


def _table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| size | operation | min s | median s | max s | full copy / this |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        base = r["full_copy"]["median"]
        for op in ("snapshot", "clone", "full_copy"):
            t = r[op]
            lines.append(
                f"| {r['size_gb']} GiB | {op} | {t['min']:.4f} | {t['median']:.4f} "
                f"| {t['max']:.4f} | {base / t['median']:.0f}x |"
            )
    return "\n".join(lines)


def _ratios(results: list[dict[str, Any]]) -> dict[str, float]:
    small, large = results[0], results[-1]
    ratios = {
        f"{op}_{large['size_gb']}G_over_{small['size_gb']}G": large[op]["median"]
        / small[op]["median"]
        for op in ("snapshot", "clone", "full_copy")
    }
    for r in results:
        for op in ("snapshot", "clone"):
            ratios[f"full_copy_over_{op}_{r['size_gb']}G"] = (
                r["full_copy"]["median"] / r[op]["median"]
            )
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10", help="volume sizes in GiB")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--copy-repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the XFS image goes")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/snapshot_clone.py needs root for its loop mount", file=sys.stderr)
        return 1
    sizes = [int(s) for s in args.sizes.split(",")]
    fs_size = f"{2 * sum(sizes) + 8}G"
    with tempfile.TemporaryDirectory(dir=args.dir) as base:
        base_path = pathlib.Path(base)
        with mounted_xfs(base_path, fs_size) as mount:
            driver = _driver(mount / "pool", base_path / "state")
            results = [_measure(driver, size, args) for size in sizes]
    print(_table(results))
    print()
    print(json.dumps({"results": results, "ratios": _ratios(results)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
