"""Port events for compute: `network-vif-plugged`, `network-vif-unplugged`, `network-vif-deleted`, and
`network-changed` when a floating IP is associated with or taken off a server's port (Nova then refreshes the
server's network information, so its addresses show the floating IP).

Neutron tells Nova when a port of a server goes up or down through `POST /os-server-external-events` of the
compute API; Nova waits for `network-vif-plugged` before it resumes a booting guest. This hook does the same:
it logs in as the network service's user (`neutron`, admin and service roles on project `service`), looks up
the `compute` endpoint in the identity catalog and posts the events there. When the catalog has no compute
endpoint (compute not deployed) it does nothing. Sending happens in one background task, in order and
batched, so an API request never waits for compute. The endpoint found is remembered for CATALOG_TTL seconds
(forgotten at once when a send fails), so a batch costs one request to compute, not two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pocketstack.common.cache import MemoryCache
from pocketstack.common.clients.base import ServiceClient
from pocketstack.common.errors import APIError

log = logging.getLogger("pocketstack.network.notifier")

PLUGGED, UNPLUGGED, DELETED = "network-vif-plugged", "network-vif-unplugged", "network-vif-deleted"
CHANGED = "network-changed"
CATALOG_TTL = 30.0  # seconds the compute endpoint (or its absence) is taken from the last catalog read

# () -> a valid token of the network service's user (e.g. `ServiceTokenProvider.token`, which renews it)
TokenSource = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class VifEvent:
    name: str  # PLUGGED, UNPLUGGED, DELETED or CHANGED
    server_id: str  # the port's device_id
    port_id: str
    status: str = "completed"

    def body(self) -> dict[str, str]:
        return {"name": self.name, "server_uuid": self.server_id, "tag": self.port_id, "status": self.status}


class ComputeNotifier:
    """Posts VIF events to compute's `os-server-external-events` when compute is in the catalog."""

    def __init__(self, identity_url: str, token_source: TokenSource, region: str,
                 interface: str = "internal") -> None:
        self.identity = ServiceClient(identity_url, "identity")
        self.token_source = token_source
        self.region = region
        self.interface = interface
        self._queue: asyncio.Queue[VifEvent] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._endpoint = MemoryCache(max_size=1)

    async def token(self) -> str:
        return await self.token_source()

    async def compute_url(self) -> str | None:
        """The compute endpoint from the catalog (read again after CATALOG_TTL: compute may come or go)."""
        cached = self._endpoint.get_now("compute")
        if cached is not None:
            return cached or None
        url = await self._catalog_compute_url()
        self._endpoint.set_now("compute", url or "", CATALOG_TTL)
        return url

    async def _catalog_compute_url(self) -> str | None:
        _, body, _ = await self.identity.request("GET", "/v3/auth/catalog", token=await self.token())
        for service in body.get("catalog", []):
            if service.get("type") != "compute":
                continue
            endpoints = [e for e in service.get("endpoints", []) if e.get("region_id", self.region) == self.region]
            for interface in (self.interface, "public"):
                for endpoint in endpoints:
                    if endpoint.get("interface") == interface:
                        return str(endpoint["url"]).rstrip("/")
        return None

    async def send(self, events: list[VifEvent]) -> bool:
        """Post the events now; False when there is no compute endpoint to tell."""
        if not events:
            return False
        url = await self.compute_url()
        if url is None:
            return False
        client = ServiceClient(url, "compute")
        try:
            # 207: compute took some events and did not know the servers of others (Nova's answer)
            await client.request("POST", "/os-server-external-events", token=await self.token(),
                                 json={"events": [e.body() for e in events]}, ok=(200, 207))
        except Exception:
            self._endpoint.clear()  # compute may have moved: read the catalog again next time
            raise
        return True

    def notify(self, events: list[VifEvent]) -> None:
        """Queue events for the sender task: sent in order, batched, failures logged, never raised into the
        API request that caused them."""
        for event in events:
            self._queue.put_nowait(event)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="network-vif-events")

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self.send(batch)
            except (APIError, KeyError, TypeError, StopIteration, RuntimeError) as exc:
                log.warning("could not send %s to compute: %s", [e.name for e in batch], exc)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued event was sent (or given up on), then stop the sender."""
        if self._worker is not None and not self._worker.done():
            await self._queue.join()
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._worker = None
