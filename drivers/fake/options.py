"""Options of the fake driver."""

from __future__ import annotations

from oslo_config import cfg

fake_opts = [
    cfg.ListOpt(
        "fake_pools",
        default=["fake"],
        help="Names of the fake driver's pools.",
    ),
    cfg.IntOpt(
        "fake_pool_capacity_gb",
        default=1000,
        min=1,
        help="Capacity of each fake pool in GiB.",
    ),
    cfg.FloatOpt(
        "fake_latency",
        default=0.0,
        min=0.0,
        help="Seconds every driver call sleeps before it answers.",
    ),
    cfg.DictOpt(
        "fake_method_latency",
        default={},
        help="Seconds per method, overriding fake_latency: "
        "create_volume:0.05,get_volume_stats:30",
    ),
    cfg.DictOpt(
        "fake_failures",
        default={},
        help="Methods that always fail, with the error they raise (a class of "
        "volworker.exception or a Python built-in one, such as RuntimeError "
        "for a failure the contract does not foresee): "
        "create_snapshot:VolumeBackendAPIException",
    ),
    cfg.DictOpt(
        "fake_healthy_calls",
        default={},
        help="Calls per method that answer at once and succeed before "
        "fake_latency, fake_method_latency and fake_failures apply to the "
        "method, e.g. get_volume_stats:1 for a backend whose stats go bad "
        "after setup.",
    ),
    cfg.IntOpt(
        "fake_setup_transient_failures",
        default=0,
        min=0,
        help="How many times do_setup fails with a transient error before it succeeds.",
    ),
]


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [("backend_defaults", fake_opts)]
