"""Options of the rbd driver, named as in Cinder's RBD driver so that an
operator's backend section carries over."""

from __future__ import annotations

from oslo_config import cfg

from volworker_drivers.file.tools import limit_opts

__all__ = ["list_opts", "rbd_opts"]

rbd_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "rbd_cluster_name",
        default="ceph",
        help="The name of the Ceph cluster: librados reads "
        "/etc/ceph/<name>.conf when rbd_ceph_conf is empty, and clients are "
        "told it in the connection info.",
    ),
    cfg.StrOpt(
        "rbd_pool",
        default="rbd",
        help="The RADOS pool holding this backend's volumes; it is also the "
        "backend's one pool as schedulers see it. It must exist and be "
        "enabled for rbd (rbd pool init POOL).",
    ),
    cfg.StrOpt(
        "rbd_user",
        help="The cephx user the driver (and attaching clients) authenticate "
        "as, without the 'client.' prefix; unset for a cluster without cephx. "
        "It needs 'profile rbd' caps on the pool; its key is found through "
        "the keyring setting of rbd_ceph_conf.",
    ),
    cfg.StrOpt(
        "rbd_ceph_conf",
        default="",
        help="Path to the ceph.conf the driver and qemu-img read (monitors, "
        "keyring). Empty means librados's default search.",
    ),
    cfg.StrOpt(
        "rbd_secret_uuid",
        help="The UUID of the libvirt secret holding rbd_user's key on the "
        "compute hosts; handed to clients in the connection info.",
    ),
    cfg.BoolOpt(
        "rbd_flatten_volume_from_snapshot",
        default=False,
        help="Make volumes created from a snapshot independent of it (a full "
        "copy of the data, at creation) instead of copy-on-write clones.",
    ),
    cfg.IntOpt(
        "rbd_max_clone_depth",
        default=5,
        min=0,
        help="The longest chain of copy-on-write clones behind a volume. A "
        "clone that would be deeper is flattened (its data copied) when it "
        "is created; 0 flattens every clone.",
    ),
    cfg.IntOpt(
        "rbd_store_chunk_size",
        default=4,
        min=1,
        help="The size, in MiB, of the RADOS objects a volume is striped "
        "over; a power of two.",
    ),
    cfg.IntOpt(
        "rados_connect_timeout",
        default=30,
        help="Seconds to wait for the cluster when connecting, and for each "
        "monitor or OSD request afterwards (librados's client_mount_timeout, "
        "rados_mon_op_timeout and rados_osd_op_timeout), so that a cluster "
        "that stops answering fails an operation instead of hanging it. A "
        "negative value keeps librados's own defaults (requests wait for "
        "ever).",
    ),
    cfg.IntOpt(
        "rados_connection_retries",
        default=3,
        min=1,
        help="Connection attempts the driver makes before it reports the "
        "cluster unavailable; the worker then retries its setup with backoff "
        "(setup_retry_attempts).",
    ),
    cfg.IntOpt(
        "rados_connection_interval",
        default=5,
        min=0,
        help="Seconds between two connection attempts.",
    ),
    cfg.IntOpt(
        "rbd_convert_timeout",
        default=3600,
        min=1,
        help="Seconds a qemu-img conversion between an image and a volume "
        "may run before it is stopped and the operation fails.",
    ),
    cfg.BoolOpt(
        "report_dynamic_total_capacity",
        default=True,
        help="Report the pool's total capacity as what it holds plus what it "
        "can still take (which moves as the cluster fills), rather than the "
        "cluster's raw size or the pool's quota.",
    ),
    *limit_opts,
]


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [("backend_defaults", rbd_opts)]
