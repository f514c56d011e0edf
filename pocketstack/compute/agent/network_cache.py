"""The server's network information kept current on `network-changed` (Nova's handling of that external
event): the network service says a port of the server changed (a floating IP was associated or taken off), and
the agent reads the port's floating IPs again into the server's network info, which its `addresses` show."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from pocketstack.common import tracing

if TYPE_CHECKING:
    from pocketstack.compute.agent.manager import ComputeAgent

log = logging.getLogger("pocketstack.compute.agent")

NETWORK_CHANGED = "network-changed"


class NetworkCacheOperations:
    """The agent's network info refresh; `self` is the `ComputeAgent`."""

    def _network_changed(self: ComputeAgent, instance_uuid: str, port_id: str | None) -> None:
        """Refresh in the background: the event's sender (the compute API) does not wait for it."""
        task = asyncio.create_task(self._refresh_network_info(instance_uuid, port_id))
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _refresh_network_info(self: ComputeAgent, instance_uuid: str, port_id: str | None) -> None:
        try:
            async with self._locks[instance_uuid], tracing.span("REST", "refresh the network info cache"):
                instance = await self.conductor.instance_get(instance_uuid)
                token = await self.service_tokens.token()
                info: list[dict[str, Any]] = []
                changed = False
                for vif in instance["network_info"] or []:
                    if port_id is None or vif["id"] == port_id:
                        _, body, _ = await self.network.request("GET", "/v2.0/floatingips", token=token,
                                                                params={"port_id": vif["id"]})
                        floating = sorted(f["floating_ip_address"] for f in body["floatingips"])
                        if floating != sorted(vif.get("floating_ips") or []):
                            vif = {**vif, "floating_ips": floating}
                            changed = True
                    info.append(vif)
                if changed:
                    await self.conductor.instance_update(instance_uuid, {"network_info": info})
        except LookupError:
            pass  # deleted meanwhile
        except Exception as exc:
            log.warning("%s: could not refresh the network info of %s: %s", self.host, instance_uuid, exc)
