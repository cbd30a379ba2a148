"""The kombu publisher's URL and envelope, without a broker."""

from __future__ import annotations

import json

from oslo_config import cfg

from volworker.publisher import envelope, kombu_url


def test_kombu_url_keeps_every_host_and_quotes_credentials() -> None:
    url = "rabbit://u:p%40ss@h1:5672,u:p%40ss@h2:5673/v%2Fh"
    assert kombu_url(cfg.ConfigOpts(), url) == (
        "amqp://u:p%40ss@h1:5672/v%2Fh;amqp://u:p%40ss@h2:5673/v%2Fh"
    )


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
