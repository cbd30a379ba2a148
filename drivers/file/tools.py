"""Running the qemu tools: list arguments, no shell, a timeout, and failures
turned into VolumeBackendAPIException naming the command and its stderr."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from volworker import exception

__all__ = ["QEMU_IMG", "QEMU_NBD", "fd_path", "missing_tools", "qemu_img_info", "run"]

LOG = logging.getLogger(__name__)

QEMU_IMG = "qemu-img"
QEMU_NBD = "qemu-nbd"
_PACKAGE = {QEMU_IMG: "qemu-utils", QEMU_NBD: "qemu-utils"}
INFO_TIMEOUT = 60


def fd_path(fd: int) -> str:
    """How a child given ``fd`` (in ``pass_fds``) names that very file.

    Tools are handed files the driver opened itself with O_NOFOLLOW,
    so no tool ever resolves a path inside a pool on its own.
    """
    return f"/dev/fd/{fd}"


def _shown(cmd: Sequence[str]) -> str:
    """The command for logs and errors, without secrets.

    An NBD export name is what keeps others off the export.
    """
    return " ".join(
        "--export-name=***" if arg.startswith("--export-name=") else arg for arg in cmd
    )


def missing_tools() -> list[str]:
    """One line for each tool the driver needs that is not on PATH."""
    return [
        f"{tool} is not installed or not on PATH (install {_PACKAGE[tool]})"
        for tool in (QEMU_IMG, QEMU_NBD)
        if shutil.which(tool) is None
    ]


def run(
    cmd: Sequence[str],
    *,
    timeout: float,
    pass_fds: Sequence[int] = (),
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; VolumeBackendAPIException when it overruns, or when it
    fails and ``check`` is set."""
    shown = _shown(cmd)
    started = time.monotonic()
    try:
        done = subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            pass_fds=tuple(pass_fds),
            stdin=subprocess.DEVNULL,
            # A daemon started from here (qemu-nbd --fork) must not pin
            # the worker's working directory or a mount under it.
            cwd="/",
        )
    except FileNotFoundError as exc:
        raise exception.VolumeBackendAPIException(
            data=f"{cmd[0]} is not installed or not on PATH "
            f"(install {_PACKAGE.get(cmd[0], 'it')}): cannot run {shown}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise exception.VolumeBackendAPIException(
            data=f"{shown} did not finish within {timeout:g}s"
        ) from exc
    LOG.debug(
        "%s: exit %d in %.3fs", shown, done.returncode, time.monotonic() - started
    )
    if check and done.returncode != 0:
        raise exception.VolumeBackendAPIException(
            data=f"{shown} failed with exit code {done.returncode}: "
            f"{done.stderr.strip() or done.stdout.strip()}"
        )
    return done


def qemu_img_info(path: str, disk_format: str, pass_fds: Sequence[int] = ()) -> Any:
    """``qemu-img info`` of ``path`` read as ``disk_format`` (never probed)."""
    done = run(
        [QEMU_IMG, "info", "--output=json", "-f", disk_format, path],
        timeout=INFO_TIMEOUT,
        pass_fds=pass_fds,
    )
    try:
        return json.loads(done.stdout)
    except ValueError as exc:
        raise exception.VolumeBackendAPIException(
            data=f"qemu-img info {path} printed no JSON: {done.stdout[:200]!r}"
        ) from exc
