"""From a message off the queue to a validated request for the manager.

Runs on the listener's thread, in the order messages arrive, so the manager
receives requests in arrival order. A cast is acknowledged once the manager
has journaled it; a refused cast at once. A call is acknowledged on arrival
(its caller retries on timeout) and answered through the senders when
answering waits for the broker (oslo's listener), else directly.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from volworker import exception
from volworker.context import RequestContext
from volworker.manager.request import Request
from volworker.metrics import OFF, Recorder
from volworker.rpc.endpoint import CONTRACT_VERSION, METHODS, Endpoint
from volworker.rpc.intake import Delivery
from volworker.senders import Senders

__all__ = ["Dispatcher"]

LOG = logging.getLogger(__name__)

#: What the dispatcher does with a cast it refused: (method, raw args, the
#: error, context). The manager records and announces the failure.
Rejecter = Callable[
    [str, dict[str, Any], exception.VolworkerError, RequestContext], None
]


def _check_version(version: Any) -> None:
    ours_major, ours_minor = (int(p) for p in CONTRACT_VERSION.split("."))
    try:
        major, minor = (int(p) for p in str(version).split("."))
    except ValueError:
        raise exception.InvalidInput(reason=f"version {version!r} is not X.Y") from None
    if major != ours_major or minor > ours_minor:
        raise exception.NotSupported(
            operation=f"contract version {version} "
            f"(this worker speaks {CONTRACT_VERSION})"
        )


def _message_id(value: Any) -> str | None:
    """oslo.messaging's ``_unique_id`` when it is one; None for anything else.

    A sender may put anything there; only a short printable string can
    de-duplicate, and nothing else may reach the journal.
    """
    usable = isinstance(value, str) and 0 < len(value) <= 64
    return value if usable and value.isascii() and value.isprintable() else None


@functools.cache
def _parameters(method: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """The contract method's required parameters, in order, and all it
    takes (every one by keyword), looked up once."""
    params = list(inspect.signature(getattr(Endpoint, method)).parameters.values())
    params = params[1:]  # self
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params), method
    required = tuple(p.name for p in params if p.default is p.empty)
    return required, frozenset(p.name for p in params)


def _check_args(method: str, args: dict[str, Any]) -> None:
    """What ``inspect.Signature.bind`` would refuse, in its words, for a
    fraction of its CPU."""
    required, taken = _parameters(method)
    for name in required:
        if name not in args:
            raise TypeError(f"missing a required argument: {name!r}")
    if not args.keys() <= taken:
        name = next(key for key in args if key not in taken)
        raise TypeError(f"got an unexpected keyword argument {name!r}")


def _context(ctxt: dict[str, Any] | None) -> RequestContext:
    ctxt = ctxt or {}
    request_id = ctxt.get("request_id")
    if isinstance(request_id, str) and 0 < len(request_id) <= 64:
        return RequestContext(
            request_id=request_id, global_request_id=ctxt.get("global_request_id")
        )
    return RequestContext()


class Dispatcher:
    """Turns deliveries into manager requests for one backend."""

    def __init__(
        self,
        endpoint: Endpoint,
        submit: Callable[[Request], None],
        reject: Rejecter,
        senders: Senders,
        metrics: Recorder = OFF,
    ) -> None:
        self._endpoint = endpoint
        self._submit = submit
        self._reject = reject
        self._senders = senders
        self._metrics = metrics

    def _build(self, message: dict[str, Any]) -> Request:
        method = message.get("method")
        _check_version(message.get("version") or "1.0")
        if message.get("namespace") is not None:
            raise exception.NotSupported(
                operation=f"namespace {message['namespace']!r}"
            )
        if not isinstance(method, str) or method not in METHODS:
            raise exception.NotSupported(operation=f"method {str(method)[:64]!r}")
        args = message.get("args") or {}
        if not isinstance(args, dict):
            raise exception.InvalidInput(reason=f"{method}: args must be an object")
        handler = getattr(self._endpoint, method)
        try:
            _check_args(method, args)
        except TypeError as exc:
            raise exception.InvalidInput(reason=f"{method}: {exc}") from None
        request: Request = handler(**args)
        return request

    def __call__(self, delivery: Delivery) -> None:
        message = dict(delivery.message)
        method = str(message.get("method"))
        context = _context(delivery.ctxt)
        self._metrics.message_taken()
        if delivery.is_call:
            delivery.acknowledge()
        try:
            request = self._build(message)
        except exception.VolworkerError as exc:
            LOG.warning("Refused %s [%s]: %s", method[:64], context.request_id, exc)
            if delivery.is_call:
                self.reply(delivery, None, exc)
            else:
                delivery.acknowledge()
                self._metrics.cast_refused(method, exc)
                args = message.get("args")
                self._reject(
                    method, args if isinstance(args, dict) else {}, exc, context
                )
            return
        request.context = context
        request.message_id = _message_id(delivery.unique_id)
        if delivery.is_call:
            request.respond = lambda result, error: self.reply(delivery, result, error)
        else:
            request.acknowledge = delivery.acknowledge
        self._submit(request)

    def reply(
        self, delivery: Delivery, result: Any, error: BaseException | None
    ) -> None:
        """Answer a call: from the senders's threads when answering waits
        for the broker, else at once (the answer is only queued)."""
        if error is not None:
            # Only the contract's classes reach every caller by name, and
            # without a traceback: it would show the worker's code and paths.
            public = exception.for_caller(error)
            self._metrics.rpc_call(str(delivery.message.get("method")), public)
            answer: dict[str, Any] = {"failure": (type(public), public, None)}
        else:
            self._metrics.rpc_call(str(delivery.message.get("method")), None)
            answer = {"reply": result}
        if delivery.reply_waits:
            self._senders.send(delivery.msg_id, delivery.reply, **answer)
            return
        try:
            delivery.reply(**answer)
        except Exception:
            # as a sender thread would: the caller times out, the worker goes on
            LOG.exception("Answering call %s failed", delivery.msg_id)
