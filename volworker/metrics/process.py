"""The metrics of one worker process: its endpoint, and a recorder per
backend.

With ``[metrics] listen`` unset the backends get recorders that count
nothing and no endpoint is opened, so metrics off costs nothing at all.
"""

from __future__ import annotations

from collections.abc import Collection

from oslo_config import cfg

from volworker.health import Health
from volworker.metrics import families
from volworker.metrics.http import Endpoint, parse_address
from volworker.metrics.live import Live, Source
from volworker.metrics.recorder import OFF, BackendMetrics, Recorder

__all__ = ["Metrics"]


class Metrics:
    """Serves the process's metrics and hands out the backends' recorders."""

    def __init__(self, listen: str | None, health: Health) -> None:
        self.enabled = bool(listen)
        self._live = Live(health)
        self._endpoint = (
            Endpoint(parse_address(listen), families.REGISTRY, health)
            if listen
            else None
        )

    @classmethod
    def from_conf(cls, conf: cfg.ConfigOpts, health: Health) -> Metrics:
        """Raises ValueError when ``[metrics] listen`` is not host:port."""
        return cls(conf.metrics.listen, health)

    def recorder(self, backend: str, methods: Collection[str] = ()) -> Recorder:
        """What ``backend`` counts with; ``methods`` are the contract's."""
        return BackendMetrics(backend, methods) if self.enabled else OFF

    def watch(self, source: Source) -> None:
        """Show ``source``'s live figures from now on."""
        if self.enabled:
            self._live.add(source)

    def start(self) -> None:
        """Serve; OSError when the address is taken or not ours."""
        if self._endpoint is None:
            return
        families.REGISTRY.register(self._live)
        try:
            self._endpoint.start()
        except OSError:
            families.REGISTRY.unregister(self._live)
            raise

    def stop(self) -> None:
        if self._endpoint is not None:
            self._endpoint.stop()
            families.REGISTRY.unregister(self._live)
