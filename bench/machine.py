"""What the numbers were measured on: machine, load and versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from typing import Any

import kombu

__all__ = ["load", "machine", "rabbitmq_version"]


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        done = subprocess.run(
            ["git", "-C", here, "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def rabbitmq_version(url: str) -> str:
    with kombu.Connection(url) as conn:
        conn.connect()
        props = conn.connection.server_properties
    version = props.get("version", "unknown")
    return version.decode() if isinstance(version, bytes) else str(version)


def machine(broker_url: str) -> dict[str, Any]:
    versions = {
        name: importlib.metadata.version(name)
        for name in ("oslo.messaging", "kombu", "SQLAlchemy", "volworker")
    }
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "rabbitmq": rabbitmq_version(broker_url),
        "commit": _git_commit(),
        **versions,
    }
