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
    cfg.StrOpt(
        "fake_effects_log",
        help="A file to which the fake backend appends every change it makes "
        "(one JSON line each: the method, the object ids, the size, pool or "
        "source) and from which it restores its objects at start, so that "
        "they outlive the worker like a real backend's. The fault suite "
        "compares it with the requests sent to find work done twice. Unset: "
        "the objects live in memory only and are gone after a restart.",
    ),
    cfg.IntOpt(
        "fake_setup_transient_failures",
        default=0,
        min=0,
        help="How many times do_setup fails with a transient error before it succeeds.",
    ),
    cfg.ListOpt(
        "fake_undeclared_features",
        default=[],
        help="Features the fake backend declines although it has them (e.g. "
        "groups, consistent_group_snapshot), for tests of what the worker does "
        "for a driver without them.",
    ),
]


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [("backend_defaults", fake_opts)]
