"""Errors keep their class name and fields across the wire."""

from __future__ import annotations

import os
import sys

import oslo_messaging
import pytest
from oslo_messaging._drivers import common as rpc_common

from volworker import exception


def _round_trip(error: Exception) -> Exception:
    try:
        raise error
    except Exception:
        data = rpc_common.serialize_remote_exception(sys.exc_info())
    return rpc_common.deserialize_remote_exception(data, ["volworker.exception"])


@pytest.mark.parametrize(
    "error",
    [
        exception.InvalidInput(reason="size must be >= 1"),
        exception.VolumeNotFound(volume_id="v1"),
        exception.SnapshotNotFound(snapshot_id="s1"),
        exception.VolumeIsBusy(volume_id="v1", reason="it has snapshots"),
        exception.InvalidVolume(reason="status is creating"),
        exception.VolumeSizeExceedsAvailableQuota(requested=5, reason="pool full"),
        exception.VolumeBackendAPIException(data="disk on fire"),
        exception.NotSupported(operation="revert_to_snapshot"),
    ],
)
def test_contract_errors_survive_rpc(error: exception.VolworkerError) -> None:
    received = _round_trip(error)
    assert isinstance(received, type(error))
    assert type(received).__name__ == type(error).__name__ + "_Remote"
    assert received.kwargs == error.kwargs
    assert str(error) in str(received)


def test_message_is_formatted_from_fields() -> None:
    assert str(exception.VolumeNotFound(volume_id="abc")) == (
        "Volume abc could not be found."
    )


def test_missing_field_does_not_hide_the_error() -> None:
    error = exception.VolumeIsBusy(volume_id="abc")
    assert "Volume %(volume_id)s is busy" in str(error)
    assert "abc" in str(error)


class _DriverBusy(exception.VolumeIsBusy):
    """A driver's own error class, unknown to callers."""


def test_a_drivers_own_error_travels_as_the_contract_class() -> None:
    error = exception.contract_error(_DriverBusy(volume_id="v1", reason="exported"))
    assert type(error) is exception.VolumeIsBusy
    assert error.kwargs == {"volume_id": "v1", "reason": "exported"}
    received = _round_trip(error)
    assert isinstance(received, exception.VolumeIsBusy)


def test_contract_errors_pass_unchanged() -> None:
    error = exception.InvalidInput(reason="x")
    assert exception.contract_error(error) is error


def test_foreign_errors_become_backend_errors() -> None:
    error = exception.contract_error(OSError(28, "No space left on device"))
    assert isinstance(error, exception.VolumeBackendAPIException)
    assert "No space left" in str(error)


def _told(error: BaseException) -> tuple[str, list[str]]:
    """What a plain oslo.messaging caller (no allowed modules) receives."""
    public = exception.for_caller(error)
    data = rpc_common.serialize_remote_exception((type(public), public, None))
    remote = rpc_common.deserialize_remote_exception(data, [])
    assert isinstance(remote, oslo_messaging.RemoteError)
    return str(remote.exc_type), [str(remote.value), *remote.traceback]


def test_a_caller_is_told_no_traceback_nor_install_path() -> None:
    try:
        try:
            {}["missing"]
        except KeyError as exc:
            where = os.path.dirname(exception.__file__)
            raise RuntimeError(f"boom in {where}/exception.py") from exc
    except RuntimeError as exc:
        name, texts = _told(exc)
    assert name == "VolumeBackendAPIException"
    text = "\n".join(texts)
    assert "RuntimeError: boom in <install>/volworker/exception.py" in text
    assert "Traceback" not in text and 'File "' not in text
    assert os.path.dirname(exception.__file__) not in text
    assert sys.prefix not in text


def test_a_caller_is_told_the_contract_name_and_fields() -> None:
    name, texts = _told(exception.VolumeNotFound(volume_id="v1"))
    assert name == "VolumeNotFound"
    assert texts[0] == "Volume v1 could not be found."
