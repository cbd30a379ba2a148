"""The kombu publisher's envelope, without a broker."""

from __future__ import annotations

import json

from volworker.publisher import envelope


def test_envelope_is_oslos_messagingv2() -> None:
    body = json.loads(
        envelope({"request_id": "req-1"}, "volworker.h@b", "volume.x.end", "info", {})
    )
    assert body["oslo.version"] == "2.0"
    message = json.loads(body["oslo.message"])
    assert message["priority"] == "INFO"
    assert message["_context_request_id"] == "req-1"
    assert set(message) == {
        "message_id",
        "publisher_id",
        "event_type",
        "priority",
        "payload",
        "timestamp",
        "_unique_id",
        "_context_request_id",
    }
