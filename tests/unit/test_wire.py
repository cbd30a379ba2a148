"""The kombu intake reads and writes oslo.messaging's RPC wire format: a
request as oslo's client packs it, an answer as oslo's server packs it,
read back by oslo's own client code (its private functions, which a change
of oslo's wire format would change first)."""

from __future__ import annotations

import json
import sys
from typing import Any

import kombu.compression
import pytest
from oslo_messaging._drivers import common as rpc_common

from volworker import exception
from volworker.rpc import wire


def _request(**extra: Any) -> dict[str, Any]:
    inner = {
        "method": "get_volume",
        "args": {"volume_id": "v1"},
        "version": "1.0",
        "_unique_id": "u1",
        "_msg_id": "m1",
        "_reply_q": "reply_abc",
        "_timeout": None,
        "_context_request_id": "req-1",
        "_context_global_request_id": None,
        **extra,
    }
    return rpc_common.serialize_msg(inner)


def _body(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_a_call_as_oslos_client_packs_it() -> None:
    found = wire.decode(_body(_request()), wire.JSON)
    assert found.message == {
        "method": "get_volume",
        "args": {"volume_id": "v1"},
        "version": "1.0",
    }
    assert found.ctxt == {"request_id": "req-1", "global_request_id": None}
    assert (found.unique_id, found.msg_id, found.reply_q) == ("u1", "m1", "reply_abc")


def test_a_bare_message_is_read_as_oslo_reads_it() -> None:
    found = wire.decode(_body({"method": "ping", "args": {}}), wire.JSON)
    assert found.message == {"method": "ping", "args": {}}
    assert found.msg_id is None and found.unique_id is None


def test_a_compressed_body() -> None:
    body, _ = kombu.compression.compress(_body(_request()), "zlib")
    found = wire.decode(body, wire.JSON, "application/x-gzip")
    assert found.message["method"] == "get_volume"


@pytest.mark.parametrize(
    ("body", "content_type", "why"),
    [
        (b"\x80\x81garbage", "application/x-python-serialize", "content type"),
        (b"{not json", wire.JSON, "not JSON"),
        (b"\xff\xfe\x00", wire.JSON, "not JSON"),
        (_body([1, 2]), wire.JSON, "JSON list"),
        (_body("text"), wire.JSON, "JSON str"),
        (_body({"oslo.version": "3.0", "oslo.message": "{}"}), wire.JSON, "3.0"),
        (_body({"oslo.version": "2.1", "oslo.message": "{}"}), wire.JSON, "2.1"),
        (_body({"oslo.version": None, "oslo.message": "{}"}), wire.JSON, "X.Y"),
        (_body({"oslo.version": "2.0", "oslo.message": 5}), wire.JSON, "not JSON"),
        (_body({"oslo.version": "2.0", "oslo.message": "{x"}), wire.JSON, "not JSON"),
        (_body({"oslo.version": "2.0", "oslo.message": "[]"}), wire.JSON, "list"),
    ],
)
def test_what_is_no_request_says_why(body: bytes, content_type: str, why: str) -> None:
    with pytest.raises(wire.BadMessage, match=why):
        wire.decode(body, content_type)


def test_a_compressed_body_that_is_not() -> None:
    with pytest.raises(wire.BadMessage, match="not readable"):
        wire.decode(b"plain", wire.JSON, "application/x-gzip")


def _read_answer(body: bytes) -> dict[str, Any]:
    """What oslo's client takes out of an answer."""
    message: dict[str, Any] = rpc_common.deserialize_msg(json.loads(body))
    return message


def test_an_answer_as_oslos_client_reads_it() -> None:
    answer = _read_answer(wire.reply_body("m1", {"id": "v1", "size": 2}, None))
    assert answer["result"] == {"id": "v1", "size": 2}
    assert answer["failure"] is None and answer["ending"] is True
    assert answer["_msg_id"] == "m1" and len(answer["_unique_id"]) == 32


def _failure(error: BaseException) -> tuple[Any, BaseException, Any]:
    try:
        raise error
    except type(error):
        info = sys.exc_info()
    assert info[0] is not None and info[1] is not None
    return info[0], info[1], info[2]


def test_a_failure_is_serialized_as_oslo_serializes_it() -> None:
    failure = _failure(exception.VolumeNotFound(volume_id="v1"))
    ours = json.loads(_read_answer(wire.reply_body("m1", None, failure))["failure"])
    assert ours == json.loads(rpc_common.serialize_remote_exception(failure))


def test_a_failure_comes_back_as_its_class() -> None:
    error = exception.VolumeNotFound(volume_id="v1")
    answer = _read_answer(wire.reply_body("m1", None, (type(error), error, None)))
    rebuilt = rpc_common.deserialize_remote_exception(
        answer["failure"], ["volworker.exception"]
    )
    assert isinstance(rebuilt, exception.VolumeNotFound)
    assert rebuilt.kwargs == {"volume_id": "v1"}
    # a server passing the rebuilt error on sends it under its own name
    again = _read_answer(wire.reply_body("m2", None, (type(rebuilt), rebuilt, None)))
    assert json.loads(again["failure"])["class"] == "VolumeNotFound"
    assert json.loads(again["failure"])["module"] == "volworker.exception"
