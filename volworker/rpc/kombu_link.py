"""The kombu intake's connection to the broker, made again when it is lost.

A link is a kombu connection made as oslo's driver makes one
(``volworker/broker.py``: every host of the transport URL in turn, named
``<program>:<pid>:rpc-intake:<host>@<backend>`` on the broker) with one
channel, its prefetch set and the queues declared. Opening it the
first time waits until the broker answers, as oslo's listener does; once
lost, it is tried again on the poller's turns, at once and then backing off
from ``rabbit_retry_interval`` by ``rabbit_retry_backoff`` up to
``rabbit_interval_max`` seconds, so that a stop is never held up by a
broker that does not answer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import amqp
import kombu
import kombu.exceptions

from volworker.rpc.kombu_settings import Settings
from volworker.rpc.topology import declare

__all__ = ["LOST", "Link"]

LOG = logging.getLogger(__name__)

#: what a lost connection raises while it is used
LOST = (OSError, amqp.exceptions.AMQPError, kombu.exceptions.KombuError)


class Link:
    """One connection and channel of the intake; ``channel`` is None while
    the connection is lost."""

    def __init__(self, settings: Settings, name: str) -> None:
        self._settings = settings
        self._name = name
        self.conn: kombu.Connection | None = None
        self.channel: Any = None
        self._retry_at = 0.0
        self._delay = settings.retry_interval

    @property
    def connection(self) -> Any:
        """The py-amqp connection (with ``sock``, ``blocking_read``)."""
        assert self.conn is not None
        return self.conn.connection

    def open(self, max_retries: int | None = None) -> None:
        """Connect, set the prefetch and declare the queues; raise when the
        broker cannot be reached within ``max_retries`` (None: ever)."""
        s = self._settings
        conn = s.connection(f"rpc-intake:{self._name}")
        try:
            conn.ensure_connection(
                errback=self._unreachable,
                max_retries=max_retries,
                interval_start=s.retry_interval,
                interval_step=s.retry_step,
                interval_max=s.retry_max,
            )
            channel = conn.channel()
            if s.prefetch > 0:
                # Before any consumer: RabbitMQ applies a prefetch to the
                # consumers started after it, each its own.
                channel.basic_qos(0, s.prefetch, False)
            for binding in s.bindings:
                declare(channel, binding)
        except BaseException:
            with contextlib.suppress(Exception):
                conn.collect()
            raise
        self.conn, self.channel = conn, channel

    def _unreachable(self, exc: Exception, interval: float) -> None:
        LOG.warning(
            "%s: cannot reach the broker (%s); retrying in %.0fs",
            self._name,
            exc,
            interval,
        )

    def drop(self) -> None:
        """Forget a lost connection (without talking to the broker); the
        next reopen() tries at once."""
        conn, self.conn, self.channel = self.conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.collect()
        self._retry_at = 0.0
        self._delay = self._settings.retry_interval

    def reopen(self, timeout: float, interrupt: threading.Event) -> bool:
        """Connect again if it is time, else wait for it at most
        ``timeout`` seconds (or until ``interrupt``); whether connected."""
        now = time.monotonic()
        if now < self._retry_at:
            interrupt.wait(min(timeout, self._retry_at - now))
            return False
        try:
            self.open(max_retries=self._settings.hosts - 1)
        except Exception as exc:
            LOG.warning(
                "%s: reconnecting to the broker failed (%s); next try in %.0fs",
                self._name,
                exc,
                self._delay,
            )
            self._retry_at = time.monotonic() + self._delay
            s = self._settings
            self._delay = min(self._delay + s.retry_step, s.retry_max)
            return False
        LOG.info("%s: connected to the broker again", self._name)
        return True

    def close(self) -> None:
        """Close the connection: what it delivered and nobody acknowledged
        returns to its queue."""
        conn, self.conn, self.channel = self.conn, None, None
        if conn is None:
            return
        try:
            conn.release()
        except LOST as exc:
            LOG.info("%s: closing the intake's connection: %s", self._name, exc)
