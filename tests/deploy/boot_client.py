"""Client side of systemd_boot.sh: run inside the container with the
checkout's Python, it reads the worker's topic and host from
/etc/volworker/volworker.conf, creates a volume on backend ``file``, attaches
it and prints the NBD URL of the export."""

from __future__ import annotations

import configparser
import sys
import time
import uuid

from volworker.rpc.rpcapi import VolumeAPI


def attach() -> str:
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
    assert info["driver_volume_type"] == "nbd", info
    data = info["data"]
    return f"nbd://{data['host']}:{data['port']}/{data['export_name']}"


if __name__ == "__main__":
    if sys.argv[1:] != ["attach"]:
        raise SystemExit("usage: boot_client.py attach")
    print(attach())
