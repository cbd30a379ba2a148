"""What an operation's handler may use, handed to it instead of the manager.

The backend's driver (called on the worker's thread pool), its records in
the state store, its notifications, the image service and the latest
capabilities: a handler needs nothing else, so it never reaches back into
the manager that runs it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

from sqlalchemy.orm import Session

from volworker import exception, handback
from volworker.driver import VolumeDriver
from volworker.image import ImageService
from volworker.metrics import OFF, Recorder
from volworker.notify import Notifications
from volworker.state.store import Store

__all__ = ["Capabilities", "Runtime"]

LOG = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class Capabilities(Protocol):
    """The backend's capability reports (volworker.capabilities.Publisher)."""

    def latest(self) -> dict[str, Any]:
        """The capabilities last composed (published or about to be)."""

    async def discover(self) -> dict[str, Any]:
        """Fresh figures from the driver, not published."""

    def request(self) -> None:
        """Publish soon: a scheduler asked."""


@dataclass(frozen=True)
class Runtime:
    """One backend's services for its operations; lives on the event loop."""

    service: str
    owner: str
    driver: VolumeDriver
    store: Store
    notifications: Notifications
    images: ImageService
    executor: Executor
    capabilities: Capabilities
    #: in a cluster, who is in it and who owns what (Watch.view)
    cluster: Callable[[], Awaitable[dict[str, Any]]] | None = None
    metrics: Recorder = OFF

    async def db(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` on the state store, in order with everything else."""
        return await self.store.run(work)

    async def blocking(
        self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``fn`` on the worker's thread pool."""
        return await handback.call(self.executor, fn, *args, **kwargs)

    async def call(
        self,
        request_id: str,
        method: Callable[P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Call a bound driver method on the pool; foreign errors become
        VolumeBackendAPIException with the cause kept."""
        name = getattr(method, "__name__", repr(method))
        started = time.monotonic()
        try:
            return await self.blocking(method, *args, **kwargs)
        except exception.VolworkerError as exc:
            raise exception.contract_error(exc) from exc
        except Exception as exc:
            LOG.exception("[%s] driver.%s raised", request_id, name)
            raise exception.VolumeBackendAPIException(
                data=f"{name}: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            self.metrics.driver_call(name, started)
            LOG.debug(
                "[%s] driver.%s took %.3fs",
                request_id,
                name,
                time.monotonic() - started,
            )

    def capability(self, key: str, default: Any) -> Any:
        """A value from the latest report (its first pool, then its top level)."""
        report = self.capabilities.latest()
        pools = report.get("pools") or [{}]
        return pools[0].get(key, report.get(key, default))
