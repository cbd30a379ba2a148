"""Every option of volworker, for ``oslo-config-generator``.

Each module declares and registers its own options; this module only gathers
them (``oslo.config.opts`` entry point ``volworker``).
"""

from __future__ import annotations

from oslo_config import cfg

from volworker import image
from volworker.driver import config as driver_config
from volworker.state import options as state_options

__all__ = ["list_opts"]


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    return [
        (driver_config.BACKEND_DEFAULTS_GROUP, list(driver_config.backend_opts)),
        ("image", list(image.image_opts)),
        (state_options.GROUP, list(state_options.database_opts)),
    ]
