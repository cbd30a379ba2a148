"""A Python client of the wire contract, for schedulers and tools.

    api = VolumeAPI.from_url("rabbit://guest:guest@127.0.0.1:5672/")
    api.create_volume(volume)                          # cast
    record = api.get_volume("host1@file", volume_id)   # call

Casts go to the server named by the volume's ``host`` (``<host>@<backend>``,
the pool stripped); calls that name no object take that server explicitly.
Errors raised by the worker arrive as the contract's classes from
:mod:`volworker.exception` (as ``<Name>_Remote`` subclasses).

A caller that makes its own transport sets ``[oslo_messaging_rabbit]
amqp_durable_queues = true`` on it, as the worker does by default
(:mod:`volworker.rpc.queues`).
"""

from __future__ import annotations

import concurrent.futures
import functools
import uuid
from typing import Any

import oslo_messaging
from oslo_config import cfg

from volworker.rpc import queues

__all__ = ["ALLOWED_EXMODS", "VolumeAPI"]

ALLOWED_EXMODS = ["volworker.exception"]


#: Threads that carry calls, so that a caller's timeout holds (see _call).
_CALLERS = concurrent.futures.ThreadPoolExecutor(
    max_workers=16, thread_name_prefix="volworker-call"
)
#: How long past its timeout a call may take to report its own timeout.
_GRACE = 1.0


def _server(host: str) -> str:
    return host.partition("#")[0]


def _paging(
    marker: str | None,
    limit: int | None,
    offset: int,
    sort_keys: list[str] | None,
    sort_dirs: list[str] | None,
) -> dict[str, Any]:
    """The listing arguments of the manageable calls."""
    return {
        "marker": marker,
        "limit": limit,
        "offset": offset,
        "sort_keys": sort_keys,
        "sort_dirs": sort_dirs,
    }


def _retries_within(timeout: float) -> int:
    """How many reconnections fit in ``timeout`` (oslo waits 1 s, 3 s, 5 s…)."""
    retries, waited = 0, 0.0
    while waited + 1 + 2 * retries <= timeout:
        waited += 1 + 2 * retries
        retries += 1
    return retries


class VolumeAPI:
    """Client side of the volworker RPC API.

    Version history:

    * 1.0 - The first contract: create_volume, delete_volume, extend_volume,
      create_snapshot, delete_snapshot, revert_to_snapshot, manage_existing,
      manage_existing_snapshot, copy_volume_to_image (casts);
      initialize_connection, terminate_connection, get_capabilities,
      get_volume, get_snapshot, list_volumes, get_manageable_volumes,
      get_manageable_snapshots (calls); publish_service_capabilities
      (fanout).
    * 1.1 - Groups: create_group, delete_group, update_group,
      create_group_snapshot, delete_group_snapshot, create_group_from_src
      (casts); get_group, get_group_snapshot, list_groups (calls). A volume
      may carry ``group_id``. 1.0 methods are sent as 1.0, so a 1.0 worker
      keeps serving them.
    """

    RPC_API_VERSION = "1.1"

    def __init__(
        self,
        transport: oslo_messaging.Transport,
        topic: str = "volworker",
        timeout: float | None = 60,
        version_cap: str | None = None,
        retry: int | None = None,
    ) -> None:
        """``retry``: how often to retry sending when the broker is away
        (None: until it is back; 0: fail at once)."""
        self.transport = transport
        self.topic = topic
        self.timeout = timeout
        target = oslo_messaging.Target(topic=topic, version=self.RPC_API_VERSION)
        self.client = oslo_messaging.get_rpc_client(
            transport,
            target,
            version_cap=version_cap or self.RPC_API_VERSION,
            timeout=timeout,
            retry=retry,
        )

    @classmethod
    def from_url(
        cls, url: str, conf: cfg.ConfigOpts = cfg.CONF, **kwargs: Any
    ) -> VolumeAPI:
        """A client on its own transport to ``url``, with the worker's queue
        defaults on ``conf`` (durable: the exchange is declared as the
        worker declares it; see :mod:`volworker.rpc.queues`)."""
        queues.apply_defaults(conf)
        transport = oslo_messaging.get_rpc_transport(
            conf, url=url, allowed_remote_exmods=ALLOWED_EXMODS
        )
        return cls(transport, **kwargs)

    def can_send_version(self, version: str) -> bool:
        """Whether the version cap allows sending ``version``."""
        return bool(self.client.can_send_version(version))

    def close(self) -> None:
        self.transport.cleanup()

    @staticmethod
    def _ctxt(ctxt: dict[str, Any] | None) -> dict[str, Any]:
        return ctxt or {"request_id": f"req-{uuid.uuid4()}"}

    def _cast(
        self,
        server: str,
        method: str,
        ctxt: Any = None,
        version: str = "1.0",
        **kwargs: Any,
    ) -> None:
        cctxt = self.client.prepare(server=_server(server), version=version)
        cctxt.cast(self._ctxt(ctxt), method, **kwargs)

    def _call(
        self,
        server: str,
        method: str,
        ctxt: Any = None,
        timeout: float | None = None,
        version: str = "1.0",
        **kwargs: Any,
    ) -> Any:
        """A call that ends within its timeout, also with the broker away.

        oslo.messaging waits for a reachable broker without limit before it
        starts a call's timeout; the call runs on a helper thread so the
        caller gets MessagingTimeout when the time is up all the same.
        """
        timeout = timeout if timeout is not None else self.timeout
        options: dict[str, Any] = {"server": _server(server), "version": version}
        if timeout is not None:
            options.update(timeout=timeout, retry=_retries_within(timeout))
        call = functools.partial(
            self.client.prepare(**options).call, self._ctxt(ctxt), method, **kwargs
        )
        if timeout is None:
            return call()
        future = _CALLERS.submit(call)
        try:
            return future.result(timeout + _GRACE)
        except concurrent.futures.TimeoutError:
            raise oslo_messaging.MessagingTimeout(
                f"{method} to {_server(server)} on {self.topic}: no reply within "
                f"{timeout:.0f}s (is the broker reachable?)"
            ) from None
        except oslo_messaging.MessageDeliveryFailure as exc:
            raise oslo_messaging.MessagingTimeout(
                f"{method} to {_server(server)} on {self.topic}: could not be sent "
                f"within {timeout:.0f}s: {exc}"
            ) from exc

    # -- casts --------------------------------------------------------------

    def create_volume(self, volume: dict[str, Any], ctxt: Any = None) -> None:
        self._cast(volume["host"], "create_volume", ctxt, volume=volume)

    def delete_volume(
        self, volume: dict[str, Any], unmanage_only: bool = False, ctxt: Any = None
    ) -> None:
        self._cast(
            volume["host"],
            "delete_volume",
            ctxt,
            volume=volume,
            unmanage_only=unmanage_only,
        )

    def extend_volume(
        self, volume: dict[str, Any], new_size: int, ctxt: Any = None
    ) -> None:
        self._cast(
            volume["host"], "extend_volume", ctxt, volume=volume, new_size=new_size
        )

    def create_snapshot(
        self, host: str, snapshot: dict[str, Any], ctxt: Any = None
    ) -> None:
        self._cast(host, "create_snapshot", ctxt, snapshot=snapshot)

    def delete_snapshot(
        self,
        host: str,
        snapshot: dict[str, Any],
        unmanage_only: bool = False,
        ctxt: Any = None,
    ) -> None:
        self._cast(
            host,
            "delete_snapshot",
            ctxt,
            snapshot=snapshot,
            unmanage_only=unmanage_only,
        )

    def revert_to_snapshot(
        self, volume: dict[str, Any], snapshot: dict[str, Any], ctxt: Any = None
    ) -> None:
        self._cast(
            volume["host"], "revert_to_snapshot", ctxt, volume=volume, snapshot=snapshot
        )

    def manage_existing(
        self, volume: dict[str, Any], ref: dict[str, Any], ctxt: Any = None
    ) -> None:
        self._cast(volume["host"], "manage_existing", ctxt, volume=volume, ref=ref)

    def manage_existing_snapshot(
        self, host: str, snapshot: dict[str, Any], ref: dict[str, Any], ctxt: Any = None
    ) -> None:
        self._cast(host, "manage_existing_snapshot", ctxt, snapshot=snapshot, ref=ref)

    def copy_volume_to_image(
        self, volume: dict[str, Any], image_meta: dict[str, Any], ctxt: Any = None
    ) -> None:
        self._cast(
            volume["host"],
            "copy_volume_to_image",
            ctxt,
            volume=volume,
            image_meta=image_meta,
        )

    def publish_service_capabilities(self, ctxt: Any = None) -> None:
        """Ask every worker on the topic to publish its capabilities now."""
        cctxt = self.client.prepare(fanout=True, version="1.0")
        cctxt.cast(self._ctxt(ctxt), "publish_service_capabilities")

    # -- calls --------------------------------------------------------------

    def initialize_connection(
        self, volume: dict[str, Any], connector: dict[str, Any], ctxt: Any = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            volume["host"],
            "initialize_connection",
            ctxt,
            volume=volume,
            connector=connector,
        )
        return result

    def terminate_connection(
        self,
        volume: dict[str, Any],
        connector: dict[str, Any] | None,
        force: bool = False,
        ctxt: Any = None,
    ) -> None:
        self._call(
            volume["host"],
            "terminate_connection",
            ctxt,
            volume=volume,
            connector=connector,
            force=force,
        )

    def get_capabilities(
        self, host: str, discover: bool = False, ctxt: Any = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            host, "get_capabilities", ctxt, discover=discover
        )
        return result

    def get_volume(self, host: str, volume_id: str, ctxt: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            host, "get_volume", ctxt, volume_id=volume_id
        )
        return result

    def get_snapshot(
        self, host: str, snapshot_id: str, ctxt: Any = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            host, "get_snapshot", ctxt, snapshot_id=snapshot_id
        )
        return result

    def list_volumes(
        self,
        host: str,
        marker: str | None = None,
        limit: int | None = None,
        ctxt: Any = None,
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(
            host, "list_volumes", ctxt, marker=marker, limit=limit
        )
        return result

    def get_manageable_volumes(
        self,
        host: str,
        marker: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        sort_keys: list[str] | None = None,
        sort_dirs: list[str] | None = None,
        ctxt: Any = None,
    ) -> list[dict[str, Any]]:
        paging = _paging(marker, limit, offset, sort_keys, sort_dirs)
        result: list[dict[str, Any]] = self._call(
            host, "get_manageable_volumes", ctxt, **paging
        )
        return result

    def get_manageable_snapshots(
        self,
        host: str,
        marker: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        sort_keys: list[str] | None = None,
        sort_dirs: list[str] | None = None,
        ctxt: Any = None,
    ) -> list[dict[str, Any]]:
        paging = _paging(marker, limit, offset, sort_keys, sort_dirs)
        result: list[dict[str, Any]] = self._call(
            host, "get_manageable_snapshots", ctxt, **paging
        )
        return result

    # -- groups (1.1) ---------------------------------------------------------

    def create_group(self, group: dict[str, Any], ctxt: Any = None) -> None:
        self._cast(group["host"], "create_group", ctxt, "1.1", group=group)

    def delete_group(
        self, group: dict[str, Any], delete_volumes: bool = False, ctxt: Any = None
    ) -> None:
        self._cast(
            group["host"],
            "delete_group",
            ctxt,
            "1.1",
            group=group,
            delete_volumes=delete_volumes,
        )

    def update_group(
        self,
        group: dict[str, Any],
        add_volumes: list[str] | None = None,
        remove_volumes: list[str] | None = None,
        ctxt: Any = None,
    ) -> None:
        self._cast(
            group["host"],
            "update_group",
            ctxt,
            "1.1",
            group=group,
            add_volumes=add_volumes or [],
            remove_volumes=remove_volumes or [],
        )

    def create_group_snapshot(
        self, host: str, group_snapshot: dict[str, Any], ctxt: Any = None
    ) -> None:
        self._cast(
            host, "create_group_snapshot", ctxt, "1.1", group_snapshot=group_snapshot
        )

    def delete_group_snapshot(
        self, host: str, group_snapshot: dict[str, Any], ctxt: Any = None
    ) -> None:
        self._cast(
            host, "delete_group_snapshot", ctxt, "1.1", group_snapshot=group_snapshot
        )

    def create_group_from_src(
        self,
        group: dict[str, Any],
        volumes: list[dict[str, Any]],
        group_snapshot_id: str | None = None,
        source_group_id: str | None = None,
        ctxt: Any = None,
    ) -> None:
        self._cast(
            group["host"],
            "create_group_from_src",
            ctxt,
            "1.1",
            group=group,
            volumes=volumes,
            group_snapshot_id=group_snapshot_id,
            source_group_id=source_group_id,
        )

    def get_group(self, host: str, group_id: str, ctxt: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            host, "get_group", ctxt, version="1.1", group_id=group_id
        )
        return result

    def get_group_snapshot(
        self, host: str, group_snapshot_id: str, ctxt: Any = None
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            host,
            "get_group_snapshot",
            ctxt,
            version="1.1",
            group_snapshot_id=group_snapshot_id,
        )
        return result

    def list_groups(
        self,
        host: str,
        marker: str | None = None,
        limit: int | None = None,
        ctxt: Any = None,
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(
            host, "list_groups", ctxt, version="1.1", marker=marker, limit=limit
        )
        return result
