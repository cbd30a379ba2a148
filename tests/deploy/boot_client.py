"""Client side of systemd_boot.sh: run inside the container with the
checkout's Python, it reads the worker's topic and host from
/etc/volworker/volworker.conf, creates a volume on backend ``file``, attaches
it and writes to DIR what a client needs: the attachment's key
(``DIR/psk/keys.psk``), qemu-io's arguments for it one per line
(``DIR/qemu-args``), and the export's URL without TLS (``DIR/plain-url``)."""

from __future__ import annotations

import configparser
import pathlib
import sys
import time
import uuid
from typing import Any

from volworker import nbd_access
from volworker.rpc.rpcapi import VolumeAPI


def attach() -> dict[str, Any]:
    conf = configparser.RawConfigParser()
    conf.read("/etc/volworker/volworker.conf")
    default = conf["DEFAULT"]
    server = f"{default['host']}@file"
    api = VolumeAPI.from_url(
        default["transport_url"], topic=default["volume_topic"], timeout=30
    )
    try:
        volume = {"id": str(uuid.uuid4()), "size": 1, "host": server}
        api.create_volume(volume)
        deadline = time.monotonic() + 60
        while api.get_volume(server, volume["id"])["status"] != "available":
            if time.monotonic() > deadline:
                raise SystemExit(f"volume {volume['id']} never became available")
            time.sleep(0.1)
        info = api.initialize_connection(volume, {"host": "boot-test"})
    finally:
        api.close()
    assert info["driver_volume_type"] == "nbd", info["driver_volume_type"]
    return dict(info["data"])


def main(out: pathlib.Path) -> None:
    data = attach()
    access = nbd_access.prepare(data, str(out / "psk"))
    (out / "qemu-args").write_text("\n".join(access.qemu_args()) + "\n")
    plain = f"nbd://{data['host']}:{data['port']}/{data['export_name']}\n"
    (out / "plain-url").write_text(plain)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "attach":
        raise SystemExit("usage: boot_client.py attach DIR")
    main(pathlib.Path(sys.argv[2]))
