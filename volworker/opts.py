"""Every option of volworker: registration for the worker, and the list for
``oslo-config-generator``.

Each module declares its own options and a ``register_opts(conf)``; this
module only gathers them (``oslo.config.opts`` entry point ``volworker``).
"""

from __future__ import annotations

from oslo_config import cfg

from volworker import backend, capabilities, coordination, health, image, logs, service
from volworker.driver import config as driver_config
from volworker.metrics import http as metrics_http
from volworker.rpc import queues
from volworker.state import options as state_options

__all__ = ["list_opts", "register_all"]


def register_all(conf: cfg.ConfigOpts) -> None:
    """Register every worker option (not the drivers': see driver.loader),
    with volworker's defaults for oslo.messaging's."""
    service.register_opts(conf)
    backend.register_opts(conf)
    capabilities.register_opts(conf)
    image.register_opts(conf)
    coordination.register_opts(conf)
    state_options.register_opts(conf)
    queues.apply_defaults(conf)
    health.register_opts(conf)
    logs.register_opts(conf)
    metrics_http.register_opts(conf)


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    return [
        (
            None,
            [
                *service.service_opts,
                *backend.backend_service_opts,
                *capabilities.capabilities_opts,
                *health.health_opts,
                *logs.log_level_opts,
            ],
        ),
        (driver_config.BACKEND_DEFAULTS_GROUP, list(driver_config.backend_opts)),
        ("coordination", list(coordination.coordination_opts)),
        (state_options.GROUP, list(state_options.database_opts)),
        ("image", list(image.image_opts)),
        (metrics_http.GROUP, list(metrics_http.metrics_opts)),
    ]
