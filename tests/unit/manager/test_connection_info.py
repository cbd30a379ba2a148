"""A driver's malformed connection info is refused by naming what is wrong,
never by showing it: it may carry a key."""

from __future__ import annotations

from typing import Any

import pytest

from volworker import exception
from volworker.manager.connections import _check_connection_info

SECRET = "5ec12e7" * 8
TLS = {"psk_identity": "id-" + SECRET, "psk_key": SECRET}


@pytest.mark.parametrize(
    ("info", "problem"),
    [
        ([{"data": {"tls": TLS}}], "a list, not a dict"),
        ({"driver_volume_type": 7, "data": {"tls": TLS}}, "no driver_volume_type"),
        ({"driver_volume_type": "nbd", "data": [TLS]}, "no data dict"),
    ],
)
def test_malformed_connection_info_is_named_not_shown(info: Any, problem: str) -> None:
    with pytest.raises(exception.VolumeBackendAPIException) as err:
        _check_connection_info(info)
    assert problem in str(err.value)
    assert SECRET not in str(err.value)


def test_sound_connection_info_passes() -> None:
    info = {"driver_volume_type": "nbd", "data": {"tls": TLS}}
    assert _check_connection_info(info) is info
