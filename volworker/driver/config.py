"""Backend sections: the options every backend has, and a driver's view of them.

Like Cinder, each name in ``enabled_backends`` has a section of its own, and a
``[backend_defaults]`` section holds values shared by every backend. A value
set in a backend's section wins over ``[backend_defaults]``, which wins over
the option's default.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Sequence
from typing import Any

from oslo_config import cfg

__all__ = [
    "BACKEND_DEFAULTS_GROUP",
    "BackendConfig",
    "backend_opts",
    "register_backend",
]

BACKEND_DEFAULTS_GROUP = "backend_defaults"

backend_opts: list[cfg.Opt] = [
    cfg.StrOpt(
        "volume_driver",
        default="file",
        help="The driver of this backend: a short name registered under the "
        "volworker.volume_drivers entry points (file, rbd, fake) or the import "
        "path of a driver class (package.module:Class).",
    ),
    cfg.StrOpt(
        "volume_backend_name",
        help="The backend name reported to schedulers; defaults to the name "
        "of the backend's section.",
    ),
    cfg.IntOpt(
        "reserved_percentage",
        default=0,
        min=0,
        max=100,
        help="Percentage of each pool's capacity the scheduler should keep free.",
    ),
    cfg.FloatOpt(
        "max_over_subscription_ratio",
        default=20.0,
        min=1.0,
        help="How far thin-provisioned pools may be over-subscribed: the "
        "ratio of provisioned to total capacity.",
    ),
]


def _register_with_defaults(
    conf: cfg.ConfigOpts, group: str, opts: Iterable[cfg.Opt]
) -> None:
    """Register ``opts`` in ``group`` with defaults from [backend_defaults]."""
    opts = list(opts)
    conf.register_opts(opts, group=BACKEND_DEFAULTS_GROUP)
    defaults = conf[BACKEND_DEFAULTS_GROUP]
    for opt in opts:
        # set_default changes the Opt object itself, so each backend
        # gets a copy of its own.
        own = copy.deepcopy(opt)
        try:
            if not conf.register_opt(own, group=group):
                continue
        except cfg.DuplicateOptError:
            continue  # registered for this backend already, default and all
        conf.set_default(own.dest, defaults[own.dest], group=group)


def register_backend(
    conf: cfg.ConfigOpts, backend: str, opts: Sequence[cfg.Opt] = tuple(backend_opts)
) -> None:
    """Register ``opts`` (by default the common ones) in ``backend``'s section."""
    _register_with_defaults(conf, backend, opts)


class BackendConfig:
    """What a driver knows of its backend.

    Options of the backend's section read as attributes
    (``configuration.file_pools``); ``backend`` is the section name, ``host``
    the service host ``"<host>@<backend>"``, ``instance`` this run of the
    worker as the journal and the cluster name it
    (``"<host>@<backend>/<incarnation>"``, see ``VolumeDriver.fence_member``)
    and ``state_dir`` a directory the driver may keep its own runtime files in.
    """

    def __init__(
        self,
        conf: cfg.ConfigOpts,
        backend: str,
        *,
        host: str,
        state_path: str,
        incarnation: str = "-",
    ) -> None:
        self._group = conf[backend]
        self.backend = backend
        self.host = f"{host}@{backend}"
        self.instance = f"{self.host}/{incarnation}"
        self.state_dir = os.path.join(state_path, backend)

    @property
    def backend_name(self) -> str:
        """``volume_backend_name``, or the section name when unset."""
        return str(self._group.volume_backend_name or self.backend)

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(self._group, name)
        except cfg.NoSuchOptError as exc:
            raise AttributeError(name) from exc
