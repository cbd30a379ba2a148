"""The error classes of volworker.

Every error the worker raises on purpose derives from :class:`VolworkerError`.
The class *names* of the contract errors (``InvalidInput``, ``VolumeNotFound``,
...) are part of wire contract 1.0: a caller receives them by name through
oslo.messaging, so they must not be renamed.

Each error carries its structured fields in ``kwargs``; oslo.messaging sends
``args`` and ``kwargs`` over the wire and rebuilds the exception on the caller's
side as ``cls(*args, **kwargs)``, which every class here accepts.
"""

from __future__ import annotations

import functools
import os
import site
import sys
from typing import Any

__all__ = [
    "BackendUnavailable",
    "GroupNotFound",
    "GroupSnapshotNotFound",
    "ImageExists",
    "ImageNotFound",
    "InvalidInput",
    "InvalidVolume",
    "ManageExistingInvalidReference",
    "ManageExistingVolumeTypeMismatch",
    "NotSupported",
    "SnapshotNotFound",
    "VolumeBackendAPIException",
    "VolumeIsBusy",
    "VolumeNotFound",
    "VolumeSizeExceedsAvailableQuota",
    "VolworkerError",
    "contract_error",
    "for_caller",
]


class VolworkerError(Exception):
    """Root of every volworker error.

    Subclasses set ``msg_fmt``; the fields given as keyword arguments fill it
    and stay available as ``self.kwargs`` (and travel with the error over RPC).
    """

    msg_fmt = "An unknown error occurred."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError, ValueError):
                # A missing field must not hide the error itself.
                message = f"{self.msg_fmt} ({kwargs!r})"
        self.msg = message
        super().__init__(message)


class InvalidInput(VolworkerError):
    """Malformed or unsafe arguments."""

    msg_fmt = "Invalid input received: %(reason)s"


class VolumeNotFound(VolworkerError):
    msg_fmt = "Volume %(volume_id)s could not be found."


class SnapshotNotFound(VolworkerError):
    msg_fmt = "Snapshot %(snapshot_id)s could not be found."


class GroupNotFound(VolworkerError):
    msg_fmt = "Group %(group_id)s could not be found."


class GroupSnapshotNotFound(VolworkerError):
    msg_fmt = "Group snapshot %(group_snapshot_id)s could not be found."


class VolumeIsBusy(VolworkerError):
    msg_fmt = "Volume %(volume_id)s is busy: %(reason)s"


class InvalidVolume(VolworkerError):
    """The volume or snapshot is in the wrong status for the operation."""

    msg_fmt = "Invalid volume: %(reason)s"


class VolumeSizeExceedsAvailableQuota(VolworkerError):
    msg_fmt = (
        "Requested volume size %(requested)sG exceeds what the backend can "
        "hold: %(reason)s"
    )


class VolumeBackendAPIException(VolworkerError):
    msg_fmt = "Bad or unexpected response from the storage backend: %(data)s"


class BackendUnavailable(VolumeBackendAPIException):
    """The backend cannot be reached now; trying again later may succeed.

    Raised by drivers (typically from do_setup) for transient conditions;
    the worker retries setup with backoff on this error only.
    """

    msg_fmt = "The storage backend is not available: %(data)s"


class NotSupported(VolworkerError):
    msg_fmt = "Operation not supported: %(operation)s"


class ManageExistingInvalidReference(InvalidInput):
    msg_fmt = "Manage existing failed for reference %(existing_ref)s: %(reason)s"


class ManageExistingVolumeTypeMismatch(InvalidInput):
    msg_fmt = "Manage existing failed, volume type mismatch: %(reason)s"


class ImageNotFound(InvalidInput):
    msg_fmt = "Image %(image_id)s could not be found."


class ImageExists(InvalidInput):
    msg_fmt = (
        "Image %(image_id)s already exists: an image is made from a volume "
        "under a new id and never replaced."
    )


def contract_error(error: BaseException) -> VolworkerError:
    """``error`` as a class of this module, which every caller can rebuild.

    A driver may raise its own subclass of a contract error; over the wire
    only this module's classes arrive by name, so such an error travels as
    the nearest contract class above it, with the same message and fields.
    """
    if type(error).__module__ == __name__ and isinstance(error, VolworkerError):
        return error
    for cls in type(error).__mro__:
        if cls.__module__ == __name__ and issubclass(cls, VolworkerError):
            kwargs = getattr(error, "kwargs", {})
            converted = cls(str(error), **kwargs)
            converted.__cause__ = error
            return converted
    converted = VolumeBackendAPIException(data=f"{type(error).__name__}: {error}")
    converted.__cause__ = error
    return converted


@functools.cache
def _install_roots() -> tuple[str, ...]:
    """Where Python and volworker are installed, longest first."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, here}
    roots.update(site.getsitepackages())
    return tuple(sorted((r for r in roots if r and r != os.sep), key=len)[::-1])


def _masked(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    for root in _install_roots():
        value = value.replace(root, "<install>")
    return value


def for_caller(error: BaseException) -> VolworkerError:
    """``error`` as a caller is told it: the contract's class with its
    message and fields, and nothing of the worker's insides.

    oslo.messaging sends the traceback of the exception it is given, with
    every chained cause, to the caller; the copy made here has none, and a
    message that quotes where Python or volworker is installed has that part
    masked. The worker's own log keeps the whole story.
    """
    error = contract_error(error)
    kwargs = {key: _masked(value) for key, value in error.kwargs.items()}
    return type(error)(_masked(error.msg), **kwargs)
