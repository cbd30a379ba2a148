"""Running the qemu tools: list arguments, no shell, a timeout, and failures
turned into VolumeBackendAPIException naming the command and its stderr.

qemu-img parses images a tenant supplied; like Cinder, the driver runs it
under ``prlimit`` with a ceiling on its address space (and, for ``info``,
on its CPU time), so a crafted header cannot make it eat the host's memory
or spin for ever.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from oslo_config import cfg

from volworker import exception

__all__ = [
    "QEMU_IMG",
    "QEMU_NBD",
    "Limits",
    "fd_path",
    "limit_opts",
    "missing_tools",
    "qemu_img_info",
    "run",
]

LOG = logging.getLogger(__name__)

QEMU_IMG = "qemu-img"
QEMU_NBD = "qemu-nbd"
PRLIMIT = "prlimit"
_PACKAGE = {QEMU_IMG: "qemu-utils", QEMU_NBD: "qemu-utils", PRLIMIT: "util-linux"}
INFO_TIMEOUT = 60
MiB = 1024 * 1024


#: What qemu-img may use on a tenant's image; options of every driver that
#: runs qemu-img on one (file, rbd).
limit_opts: list[cfg.Opt] = [
    cfg.IntOpt(
        "qemu_img_memory_limit_mb",
        default=1024,
        min=64,
        help="Address space, in MiB, qemu-img may use (prlimit --as) when it "
        "reads or converts an image: a crafted image cannot exhaust the "
        "host's memory. Cinder's limit for qemu-img is 1 GiB as well.",
    ),
    cfg.IntOpt(
        "qemu_img_info_cpu_limit",
        default=30,
        min=1,
        help="Seconds of CPU time qemu-img may use (prlimit --cpu) to read an "
        "image's header before it is killed and the image refused.",
    ),
]


@dataclass(frozen=True)
class Limits:
    """Resource ceilings for a tool run on a tenant's data."""

    memory_mb: int  # address space
    cpu_seconds: int | None = None

    def memory_only(self) -> Limits:
        """These limits without the CPU ceiling: for work (a conversion) whose
        CPU time grows with the data, and which has a timeout instead."""
        return Limits(self.memory_mb)

    @classmethod
    def of(cls, configuration: Any) -> Limits:
        """The limits a backend's section sets (:data:`limit_opts`)."""
        return cls(
            configuration.qemu_img_memory_limit_mb,
            configuration.qemu_img_info_cpu_limit,
        )

    def environment(self) -> dict[str, str]:
        """The tool's environment: glibc keeps at most two malloc arenas.

        An address-space ceiling counts what is reserved, and glibc reserves
        64 MiB for the arena of each thread that allocates: qemu-img reading
        an rbd: image through librados (dozens of threads) reserves about
        1.1 GiB and was killed under the 1 GiB ceiling now and then; with
        two arenas its peak is about 0.5 GiB, so the ceiling bounds what the
        tool uses rather than how many threads it runs."""
        return {**os.environ, "MALLOC_ARENA_MAX": "2"}

    def prefix(self) -> list[str]:
        """``prlimit`` and its arguments, to put before the command."""
        args = [PRLIMIT, f"--as={self.memory_mb * MiB}"]
        if self.cpu_seconds is not None:
            args.append(f"--cpu={self.cpu_seconds}")
        return [*args, "--"]


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
        for tool in (QEMU_IMG, QEMU_NBD, PRLIMIT)
        if shutil.which(tool) is None
    ]


def run(
    cmd: Sequence[str],
    *,
    timeout: float,
    pass_fds: Sequence[int] = (),
    check: bool = True,
    limits: Limits | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (under ``limits``); VolumeBackendAPIException when it
    overruns, or when it fails and ``check`` is set."""
    env = None
    if limits is not None:
        cmd = [*limits.prefix(), *cmd]
        env = limits.environment()
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
            env=env,
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


def qemu_img_info(
    path: str, disk_format: str, limits: Limits, pass_fds: Sequence[int] = ()
) -> Any:
    """``qemu-img info`` of ``path`` read as ``disk_format`` (never probed)."""
    done = run(
        [QEMU_IMG, "info", "--output=json", "-f", disk_format, path],
        timeout=INFO_TIMEOUT,
        pass_fds=pass_fds,
        limits=limits,
    )
    try:
        return json.loads(done.stdout)
    except ValueError as exc:
        raise exception.VolumeBackendAPIException(
            data=f"qemu-img info {path} printed no JSON: {done.stdout[:200]!r}"
        ) from exc
