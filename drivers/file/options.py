"""Options of the file driver."""

from __future__ import annotations

from oslo_config import cfg

from .tools import limit_opts

__all__ = ["file_opts", "list_opts"]

file_opts: list[cfg.Opt] = [
    cfg.ListOpt(
        "file_pools",
        default=["$state_path/volumes"],
        help="The pools of this backend, each a directory holding volumes as "
        "sparse raw files. An item is NAME:/absolute/path, or a bare "
        "absolute path, which makes a pool named after the directory's last "
        "component. The first pool is the default one. A missing pool "
        "directory is created when its parent exists. Snapshots and clones "
        "are reflinks when the filesystem supports them (XFS with "
        "reflink=1, btrfs) and sparse copies otherwise.",
    ),
    cfg.BoolOpt(
        "file_shared_storage",
        default=False,
        help="The pools are on storage every member of a cluster mounts at "
        "the same paths (NFS, CephFS): when a member dies, the member that "
        "takes over its work exports its attached volumes again. Without "
        "it, a dead member's attachments are declared lost.",
    ),
    cfg.HostAddressOpt(
        "nbd_host",
        default="127.0.0.1",
        help="Address the NBD exports of attached volumes listen on; clients "
        "connect to it, so it must be reachable from the hosts that attach "
        "volumes.",
    ),
    cfg.StrOpt(
        "nbd_port_range",
        default="",
        help="TCP ports for NBD exports, as FIRST-LAST (e.g. 10809-10999), "
        "one port per attached volume. Empty lets the operating system pick "
        "a free port for each export. An export keeps its port across worker "
        "restarts, so in production choose a range outside the ephemeral "
        "ports (net.ipv4.ip_local_port_range), where no outgoing connection "
        "can take it meanwhile.",
    ),
    cfg.StrOpt(
        "nbd_tls",
        default="psk",
        choices=[
            (
                "psk",
                "every export requires TLS with a pre-shared key of its own, "
                "made for each attachment and handed over only in the reply "
                "to initialize_connection",
            ),
            (
                "none",
                "plain NBD: whoever reaches an export's port and learns its "
                "name can read and write the volume; only for a storage "
                "network every host on which is trusted",
            ),
        ],
        help="How NBD exports are secured. With psk, initialize_connection "
        "returns data.tls = {psk_identity, psk_key}; a client connects with "
        "TLS-PSK (qemu's tls-creds-psk, libnbd's nbds:// with tls-psk-file), "
        "and no other key, nor a client without TLS, gets any data or even "
        "the export's name. Changing it affects new attachments only.",
    ),
    cfg.IntOpt(
        "file_convert_timeout",
        default=3600,
        min=1,
        help="Seconds a qemu-img conversion between an image and a volume "
        "may run before it is stopped and the operation fails.",
    ),
    *limit_opts,
]


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [("backend_defaults", file_opts)]
