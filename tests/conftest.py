"""Shared fixtures: configuration objects and the real services tests use."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket

import pytest

# the session's one Ceph cluster, for every test of the rbd driver
from tests.ceph import ceph_cluster  # noqa: F401

IN_CI = os.environ.get("CI") == "true"


def service_up(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, port: int) -> None:
    """Skip on a laptop without the service; fail under CI=true."""
    if service_up(port):
        return
    message = f"{name} is not reachable on 127.0.0.1:{port}"
    if IN_CI:
        pytest.fail(message + " (CI=true needs it)")
    pytest.skip(message)


def require_root(what: str) -> None:
    """Skip without root on a laptop; fail under CI=true (CI runs as root)."""
    if os.geteuid() == 0:
        return
    if IN_CI:
        pytest.fail(f"{what} needs root and CI=true runs as root")
    pytest.skip(f"{what} needs root")


def require_tool(name: str, package: str) -> str:
    """The path of ``name``; skip on a laptop without it, fail under CI."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed (apt-get install {package})"
    if IN_CI:
        pytest.fail(message + "; CI=true needs it")
    pytest.skip(message)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Declare the shared broker's control exchange transient, as the tests'
    notification listeners declare it.

    Workers default to durable queues and follow a transient exchange that
    exists (volworker.rpc.queues); on a fresh broker the first worker would
    otherwise make it durable, and every transient declaration after it
    would fail. Tests of durability use private nodes (tests/faults/broker.py).
    """
    if not service_up(5672):
        return
    import kombu

    from volworker.testing.listen import BROKER

    exchange = kombu.Exchange("openstack", type="topic", durable=False)
    with contextlib.suppress(Exception), kombu.Connection(BROKER) as conn:
        exchange(conn.default_channel).declare()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Empty the broker's default notification queues the tests filled.

    oslo.messaging's Notifier declares notifications.<priority> so that a
    consumer that comes later finds what it missed; on a test machine none
    comes, and every run would leave its notifications behind.
    """
    if not service_up(5672):
        return
    import kombu

    try:
        with kombu.Connection("amqp://guest:guest@127.0.0.1:5672//") as conn:
            for name in ("notifications.info", "notifications.error"):
                with contextlib.suppress(Exception):
                    conn.default_channel.queue_purge(name)
    except Exception:
        return
