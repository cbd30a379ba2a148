"""What the client tells a person when something goes wrong, and how it exits.

Exit codes: 0 done; 1 the worker refused or failed the request (an error
of the contract, or an object that ended in an ``error*`` status); 2 the
request could not be made or not be answered (bad usage, no reply in time,
no broker).
"""

from __future__ import annotations

import oslo_messaging

from volworker import exception

__all__ = [
    "EXIT_FAILED",
    "EXIT_UNREACHED",
    "ClientError",
    "remote_error_line",
]

EXIT_FAILED = 1
EXIT_UNREACHED = 2


class ClientError(Exception):
    """An error the client explains in one line before it exits."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _contract_name(exc: BaseException) -> str:
    """The contract's class name of a rebuilt remote error.

    oslo.messaging hands back ``<Name>_Remote`` subclasses; the name the
    contract promises is that of the first class from volworker.exception.
    """
    for cls in type(exc).__mro__:
        if cls.__module__ == exception.__name__:
            return cls.__name__
    return type(exc).__name__


def remote_error_line(exc: BaseException) -> str:
    """``Name: message`` for an error the worker raised, without its trace."""
    if isinstance(exc, exception.VolworkerError):
        # Str() of a remote error carries the worker's traceback;
        # ``msg`` is the message alone.
        return f"{_contract_name(exc)}: {exc.msg}"
    if isinstance(exc, oslo_messaging.RemoteError):
        first = str(exc.value or "").splitlines()
        return f"{exc.exc_type}: {first[0] if first else ''}".rstrip(": ")
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
