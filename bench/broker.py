"""Small direct dealings with the broker: clearing up a round's queues and
reading a queue's depth."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import amqp.exceptions
import kombu

from volworker.testing.listen import BROKER

__all__ = ["BROKER", "delete_queues", "purge_queues", "queue_depth"]


def _on_each(names: Iterable[str], action: str) -> None:
    """``channel.<action>(name)`` for each queue that exists (a fresh channel
    each: a missing queue closes the one it was asked on)."""
    with kombu.Connection(BROKER) as conn:
        for name in names:
            channel = conn.channel()
            with contextlib.suppress(amqp.exceptions.NotFound):
                getattr(channel, action)(name)
            with contextlib.suppress(Exception):
                channel.close()


def delete_queues(names: Iterable[str]) -> None:
    """Delete the named queues (those a stopped server leaves behind)."""
    _on_each(names, "queue_delete")


def purge_queues(names: Iterable[str]) -> None:
    """Empty the named queues where they exist."""
    _on_each(names, "queue_purge")


def queue_depth(name: str) -> int | None:
    """Messages waiting in ``name``; None if there is no such queue."""
    with kombu.Connection(BROKER) as conn:
        channel = conn.channel()
        try:
            _, count, _ = channel.queue_declare(name, passive=True)
        except amqp.exceptions.NotFound:
            return None
        channel.close()
        return int(count)
