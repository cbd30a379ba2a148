"""The ceiling: the messaging of a create without oslo.messaging's machinery.

Run as a process (``python -m bench.ceiling_server --mode MODE --config-file
FILE``) on a config written by :class:`volworker.testing.worker.Worker`, it
consumes the backend's server queue (``<volume_topic>.<host>@<backend>`` on
the control exchange ``openstack``, declared as oslo declares it), and for
each oslo-format ``create_volume`` cast sends ``volume.create.start`` and
``volume.create.end`` in oslo's ``messagingv2`` wire format (the
``oslo.version``/``oslo.message`` envelope, the cast's ``_context_*`` keys,
routing key ``notifications.info``), with every publish confirmed by the
broker before the cast is acknowledged. Two modes:

- ``each``: kombu, a confirm wait per publish, each cast acknowledged after
  its two notifications are confirmed;
- ``pipelined``: py-amqp, the notifications of up to ``--batch`` casts
  published at once, one wait for their confirms, then one acknowledgement
  (``multiple``) for the batch.

Deliveries are only collected in the consumer callback and handled in the
main loop: waiting for a confirm reads the connection, and a delivery read
then must not start another publish inside the first.

It says ``READY=1`` on ``NOTIFY_SOCKET`` once it consumes and stops on
SIGTERM. :class:`CeilingServer` starts it like the bare server.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import datetime
import json
import pathlib
import signal
import socket
import sys
import threading
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import amqp
import kombu

from bench.bare_server import BareServer, _notify_ready
from volworker.testing.worker import Worker

__all__ = ["MODES", "CeilingServer"]

EXCHANGE = "openstack"
NOTIFY_KEY = "notifications.info"
MODES = ("each", "pipelined")


def _settings(config: str, backend: str) -> tuple[str, str, str]:
    """(broker URL for kombu, server queue, publisher id) from the config."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(config)
    default = parser["DEFAULT"]
    url = default["transport_url"].replace("rabbit://", "amqp://", 1)
    server = f"{default['host']}@{backend}"
    return url, f"{default['volume_topic']}.{server}", f"volworker.{server}"


def _notification(
    cast: dict[str, Any], publisher_id: str, event_type: str, status: str
) -> dict[str, Any]:
    """One notification about ``cast``, as oslo's messagingv2 driver sends
    it: the message, its ``_unique_id``, the caller's context, enveloped."""
    stamp = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    message = {
        "message_id": str(uuid.uuid4()),
        "publisher_id": publisher_id,
        "event_type": event_type,
        "priority": "INFO",
        "payload": {**cast["args"]["volume"], "status": status},
        "timestamp": str(stamp),
        "_unique_id": uuid.uuid4().hex,
    }
    message.update((k, v) for k, v in cast.items() if k.startswith("_context_"))
    return {"oslo.version": "2.0", "oslo.message": json.dumps(message)}


def _pair(body: Any, publisher_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``.start`` and ``.end`` notifications of one enveloped cast."""
    if isinstance(body, bytes | str):
        body = json.loads(body)
    cast = json.loads(body["oslo.message"])
    if cast.get("method") != "create_volume":
        raise ValueError(f"not a create_volume cast: {cast.get('method')!r}")
    return (
        _notification(cast, publisher_id, "volume.create.start", "creating"),
        _notification(cast, publisher_id, "volume.create.end", "available"),
    )


def _declare(conn: Any, queue: str) -> None:
    """The server queue and oslo's default notification queue, as they are
    if they exist, else transient as oslo declares them (bound to the
    control exchange, which must exist: the round's collector declares it)."""
    for name in (queue, NOTIFY_KEY):
        channel = conn.channel()
        try:
            channel.queue_declare(name, passive=True)
            continue
        except amqp.exceptions.NotFound:
            channel = conn.channel()
        channel.queue_declare(name, durable=False, auto_delete=False)
        channel.queue_bind(name, EXCHANGE, routing_key=name)


def run_each(url: str, queue: str, publisher_id: str, stop: threading.Event) -> None:
    """kombu: a confirm wait per publish, an ack per cast."""
    pending: list[kombu.Message] = []
    with kombu.Connection(url, transport_options={"confirm_publish": True}) as conn:
        _declare(conn, queue)
        producer = kombu.Producer(conn.channel())
        channel = conn.channel()
        channel.basic_qos(0, 64, False)
        source = kombu.Queue(queue, no_declare=True)
        with kombu.Consumer(
            channel, [source], on_message=pending.append, accept=["json"]
        ):
            _notify_ready()
            while not stop.is_set():
                with contextlib.suppress(TimeoutError, socket.timeout):
                    conn.drain_events(timeout=0.2)
                while pending:
                    message = pending.pop(0)
                    for note in _pair(message.decode(), publisher_id):
                        producer.publish(
                            note, exchange=EXCHANGE, routing_key=NOTIFY_KEY
                        )
                    message.ack()


def _connect(url: str) -> amqp.Connection:
    parts = urllib.parse.urlsplit(url)
    conn = amqp.Connection(
        f"{parts.hostname}:{parts.port or 5672}",
        userid=urllib.parse.unquote(parts.username or "guest"),
        password=urllib.parse.unquote(parts.password or "guest"),
        virtual_host=urllib.parse.unquote(parts.path[1:]) or "/",
    )
    conn.connect()
    return conn


class _Confirms:
    """Publishes on a confirm channel and waits for all of them at once."""

    def __init__(self, conn: amqp.Connection) -> None:
        self._conn = conn
        self.channel = conn.channel()
        self.channel.confirm_select()
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)
        self._sent = 0
        self._confirmed = 0

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._confirmed = max(self._confirmed, tag)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        raise RuntimeError(f"the broker refused publish {tag}")

    def publish(self, body: dict[str, Any]) -> None:
        message = amqp.Message(
            json.dumps(body), content_type="application/json", content_encoding="utf-8"
        )
        self.channel.basic_publish(message, exchange=EXCHANGE, routing_key=NOTIFY_KEY)
        self._sent += 1

    def wait(self) -> None:
        while self._confirmed < self._sent:
            self._conn.drain_events(timeout=30)


def _take(conn: amqp.Connection, pending: list[Any], batch: int) -> None:
    """Read what the broker has for us: wait a little for the first frame,
    then whatever is ready, up to a batch."""
    timeout = 0.2
    while len(pending) < batch:
        try:
            conn.drain_events(timeout=timeout)
        except TimeoutError:
            return
        timeout = 0


def run_pipelined(
    url: str, queue: str, publisher_id: str, stop: threading.Event, batch: int
) -> None:
    """py-amqp: publish a batch's notifications, one confirm wait, one ack."""
    pending: list[amqp.Message] = []
    conn = _connect(url)
    try:
        _declare(conn, queue)
        confirms = _Confirms(conn)
        channel = conn.channel()
        channel.basic_qos(0, 2 * batch, False)
        channel.basic_consume(queue, callback=pending.append)
        _notify_ready()
        while not stop.is_set():
            _take(conn, pending, batch)
            if not pending:
                continue
            taken, pending[:] = pending[:batch], pending[batch:]
            for message in taken:
                for note in _pair(message.body, publisher_id):
                    confirms.publish(note)
            confirms.wait()
            channel.basic_ack(taken[-1].delivery_tag, multiple=True)
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--backend", default="bare")
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    url, queue, publisher_id = _settings(args.config_file, args.backend)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.mode == "each":
        run_each(url, queue, publisher_id, stop)
    else:
        run_pipelined(url, queue, publisher_id, stop, args.batch)
    return 0


class CeilingServer(BareServer):
    """The ceiling server as a process, driven like the bare server."""

    module = "bench.ceiling_server"

    def __init__(
        self, tmp_path: pathlib.Path, *, mode: str, batch: int = 64, **kwargs: Any
    ) -> None:
        kwargs.setdefault("name", f"ceiling-{mode}")
        super().__init__(tmp_path, **kwargs)
        self.mode = mode
        self.batch = batch

    def arguments(self) -> list[str]:
        return ["--mode", self.mode, "--batch", str(self.batch)]


def factory(mode: str, batch: int = 64) -> Callable[[pathlib.Path, str], Worker]:
    """A maker of ceiling servers for :mod:`bench.ceiling`'s rounds."""
    return lambda tmp, name: CeilingServer(tmp, name=name, mode=mode, batch=batch)


if __name__ == "__main__":
    sys.exit(main())
