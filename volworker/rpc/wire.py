"""oslo.messaging's RPC wire format (rabbit driver, envelope 2.0), read and
written without oslo's driver.

A request body is JSON, ``{"oslo.version": "2.0", "oslo.message": "<json>"}``;
the inner message holds ``method``, ``args``, ``version``, maybe
``namespace``, the sender's ``_unique_id``, the request context as
``_context_<key>`` entries and, for a call, ``_msg_id``, ``_reply_q`` and
``_timeout``. A JSON object without the envelope's two keys is the message
itself, as oslo reads it (the form from before the envelope).

A call is answered on the default exchange with the routing key
``_reply_q``, in the same envelope: ``result``, ``failure`` (the exception
as oslo serializes it: JSON text of its class, module, message, traceback
lines, args and kwargs, from which the caller rebuilds it), ``ending`` (the
answer is complete), ``_msg_id`` (which call it answers) and a
``_unique_id`` of its own, with which the caller drops a copy.
"""

from __future__ import annotations

import dataclasses
import json
import traceback
import uuid
from typing import Any

import kombu.compression
from oslo_serialization import jsonutils

__all__ = ["JSON", "BadMessage", "Request", "decode", "reply_body"]

JSON = "application/json"
ENVELOPE_VERSION = (2, 0)
VERSION_KEY = "oslo.version"
MESSAGE_KEY = "oslo.message"
CONTEXT_PREFIX = "_context_"
#: oslo's suffix of an exception class rebuilt on the caller's side
_REMOTE = "_Remote"


class BadMessage(ValueError):
    """A body that is no RPC request; the text says what is wrong with it."""


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """An RPC request as oslo's listener hands it over."""

    #: method, args, version, namespace: what is left of the inner message
    message: dict[str, Any]
    #: the ``_context_*`` entries, without their prefix
    ctxt: dict[str, Any]
    unique_id: Any
    #: ``_msg_id``: set when the sender waits for an answer
    msg_id: Any
    reply_q: Any


def _envelope_version(value: Any) -> tuple[int, int]:
    try:
        major, minor, *_ = (int(part) for part in str(value).split("."))
    except ValueError:
        raise BadMessage(f"envelope version {str(value)[:20]!r} is not X.Y") from None
    return major, minor


def _inner(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadMessage(f"the body is a JSON {type(body).__name__}, not an object")
    if VERSION_KEY not in body or MESSAGE_KEY not in body:
        return body
    major, minor = _envelope_version(body[VERSION_KEY])
    if major != ENVELOPE_VERSION[0] or minor > ENVELOPE_VERSION[1]:
        raise BadMessage(
            f"envelope version {str(body[VERSION_KEY])[:20]!r} is not "
            f"{ENVELOPE_VERSION[0]}.{ENVELOPE_VERSION[1]}"
        )
    text = body[MESSAGE_KEY]
    if not isinstance(text, str):
        raise BadMessage(f"{MESSAGE_KEY} is a {type(text).__name__}, not JSON text")
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise BadMessage(f"{MESSAGE_KEY} is not JSON ({exc})") from None
    if not isinstance(message, dict):
        raise BadMessage(f"{MESSAGE_KEY} is a JSON {type(message).__name__}")
    return message


def decode(
    body: bytes, content_type: str | None, compression: str | None = None
) -> Request:
    """The request in a message's body; BadMessage if it holds none.

    Only JSON is taken, UTF-8 whatever the content encoding says, as kombu
    reads what oslo's clients send.
    """
    if content_type != JSON:
        raise BadMessage(f"content type {str(content_type)[:40]!r}, not {JSON}")
    if compression:
        try:
            body = kombu.compression.decompress(body, compression)
        except Exception as exc:
            raise BadMessage(f"{compression[:40]} body not readable ({exc})") from None
    try:
        loaded = json.loads(body)
    except ValueError as exc:
        raise BadMessage(f"the body is not JSON ({str(exc)[:80]})") from None
    message = _inner(loaded)
    ctxt = {
        key[len(CONTEXT_PREFIX) :]: message.pop(key)
        for key in [k for k in message if k.startswith(CONTEXT_PREFIX)]
    }
    message.pop("_timeout", None)
    return Request(
        message=message,
        ctxt=ctxt,
        unique_id=message.pop("_unique_id", None),
        msg_id=message.pop("_msg_id", None),
        reply_q=message.pop("_reply_q", None),
    )


def _failure(failure: tuple[Any, BaseException, Any]) -> str:
    """An exception as oslo's ``serialize_remote_exception`` writes it."""
    error = failure[1]
    cls_name, mod_name = type(error).__name__, type(error).__module__
    # An error rebuilt from another server's answer goes on under its own name.
    if cls_name.endswith(_REMOTE) and mod_name.endswith(_REMOTE):
        cls_name, mod_name = cls_name[: -len(_REMOTE)], mod_name[: -len(_REMOTE)]
    data = {
        "class": cls_name,
        "module": mod_name,
        "message": str(error),
        "tb": traceback.format_exception(*failure),
        "args": error.args,
        "kwargs": getattr(error, "kwargs", {}),
    }
    return str(jsonutils.dumps(data))


def reply_body(
    msg_id: Any, result: Any, failure: tuple[Any, BaseException, Any] | None
) -> bytes:
    """The answer to call ``msg_id``: ``result``, or ``failure`` (an
    exc_info triple) when it failed."""
    message = {
        "result": result,
        "failure": _failure(failure) if failure else None,
        "ending": True,
        "_msg_id": msg_id,
        "_unique_id": uuid.uuid4().hex,
    }
    envelope = {VERSION_KEY: "2.0", MESSAGE_KEY: jsonutils.dumps(message)}
    return str(jsonutils.dumps(envelope)).encode()
