"""Raw RPC messages, as oslo.messaging puts them on the wire, sent by kombu.

oslo.messaging (rabbit driver, envelope 2.0) publishes a request as
``{"oslo.version": "2.0", "oslo.message": "<json>"}`` to the topic exchange
``openstack`` with routing key ``<topic>.<server>``; the inner message holds
``method``, ``args``, ``version``, ``_unique_id`` and the context as
``_context_<key>`` entries. Building it by hand lets a test send what no
well-behaved client sends: the same ``_unique_id`` twice, or junk.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import kombu

from volworker.testing.listen import BROKER

__all__ = ["RawPublisher", "envelope", "request"]


def request(
    method: Any,
    args: Any,
    *,
    version: Any = "1.0",
    unique_id: Any = None,
    ctxt: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The inner message of a cast."""
    message: dict[str, Any] = {
        "method": method,
        "args": args,
        "version": version,
        "_unique_id": uuid.uuid4().hex if unique_id is None else unique_id,
    }
    for key, value in (ctxt or {"request_id": f"req-{uuid.uuid4()}"}).items():
        message[f"_context_{key}"] = value
    return message


def envelope(message: Any) -> dict[str, Any]:
    return {"oslo.version": "2.0", "oslo.message": json.dumps(message)}


class RawPublisher:
    """Publishes to one worker's ``<topic>.<server>`` queue."""

    def __init__(self, topic: str, server: str, url: str = BROKER) -> None:
        self.routing_key = f"{topic}.{server}"
        self._conn = kombu.Connection(url)
        self._exchange = kombu.Exchange("openstack", type="topic", durable=False)
        self._producer = self._conn.Producer(exchange=self._exchange)

    def publish(self, body: Any, **kwargs: Any) -> None:
        """Send ``body`` as it is (kombu serialises it as JSON)."""
        self._producer.publish(body, routing_key=self.routing_key, **kwargs)

    def cast(self, method: Any, args: Any, **kwargs: Any) -> dict[str, Any]:
        """Send one cast; return its inner message."""
        message = request(method, args, **kwargs)
        self.publish(envelope(message))
        return message

    def close(self) -> None:
        self._conn.release()
