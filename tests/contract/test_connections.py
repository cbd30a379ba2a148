"""Exports and connections: initialize, repeat, terminate, restore."""

from __future__ import annotations

import pathlib

from tests.contract import blockclient
from tests.contract.conftest import Backend
from volworker.context import RequestContext
from volworker.objects import Attachment

GiB = 1024**3


def test_initialize_returns_connection_info(backend: Backend) -> None:
    volume = backend.create()
    backend.driver.create_export(RequestContext(), volume, {"host": "c1"})
    info = backend.attach(volume)
    assert isinstance(info["driver_volume_type"], str) and info["driver_volume_type"]
    assert isinstance(info["data"], dict)
    if info["driver_volume_type"] == "nbd":
        _check_nbd(info["data"])


def _check_nbd(data: dict) -> None:
    """An NBD connection as the contract describes it, TLS-PSK by default."""
    assert isinstance(data["host"], str) and data["host"]
    assert isinstance(data["port"], int) and 0 < data["port"] < 65536
    assert isinstance(data["export_name"], str) and data["export_name"]
    tls = data["tls"]
    assert set(tls) == {"psk_identity", "psk_key"}
    assert isinstance(tls["psk_identity"], str) and tls["psk_identity"]
    assert len(bytes.fromhex(tls["psk_key"])) >= 32  # at least 256 bits


def test_initialize_again_gives_the_same_connection(backend: Backend) -> None:
    volume = backend.create()
    assert backend.attach(volume) == backend.attach(volume)


def test_terminate_then_attach_again(backend: Backend) -> None:
    volume = backend.create()
    first = backend.attach(volume)
    backend.detach(volume)
    backend.driver.remove_export(RequestContext(), volume)
    second = backend.attach(volume)
    assert second["driver_volume_type"] == first["driver_volume_type"]


def test_terminate_without_connector_ends_every_connection(backend: Backend) -> None:
    volume = backend.create()
    backend.attach(volume)
    backend.driver.terminate_connection(volume, None)
    backend.attached.clear()
    backend.driver.delete_volume(volume)  # no export is left to refuse it


def test_ensure_export_restores_after_restart(
    backend: Backend, tmp_path: pathlib.Path
) -> None:
    volume = backend.create()
    connector = {"host": "contract-client"}
    info = backend.attach(volume)
    # A new driver instance on the same backend stands for a restarted worker.
    restarted = backend.harness.restart(backend.driver, tmp_path)
    attachment = Attachment("a1", volume.id, connector, info)
    restarted.ensure_export(RequestContext(), volume.replace(attachments=[attachment]))
    assert restarted.initialize_connection(volume, connector) == info
    if info["driver_volume_type"] in blockclient.PROTOCOLS:
        assert blockclient.size(info) == volume.size * GiB
    restarted.terminate_connection(volume, connector)
    backend.attached.clear()
