"""What the agent does on the external events other services send about a server (Nova's handling of them):
`network-changed` — a port of the server changed (a floating IP was associated or taken off): the port's floating
IPs are read again into the server's network info, which its `addresses` show; `volume-extended` — an attached
volume grew: the hypervisor is told its new size, so the guest sees it. Both run in the background, under the
server's lock."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from pocketstack.common import tracing

if TYPE_CHECKING:
    from pocketstack.compute.agent.manager import ComputeAgent

log = logging.getLogger("pocketstack.compute.agent")

NETWORK_CHANGED, VOLUME_EXTENDED = "network-changed", "volume-extended"
GiB = 1 << 30


class ServerEventOperations:
    """The agent's handling of network-changed and volume-extended; `self` is the `ComputeAgent`."""

    def _handle_server_event(self: ComputeAgent, instance_uuid: str, name: str, tag: str | None) -> None:
        """In the background: the event's sender (the compute API) does not wait for it."""
        if name == NETWORK_CHANGED:
            work = self._refresh_network_info(instance_uuid, tag)
        elif name == VOLUME_EXTENDED and tag:
            work = self._extend_volume(instance_uuid, tag)
        else:
            return
        task = asyncio.create_task(work)
        self._event_tasks.add(task)
        task.add_done_callback(self._event_tasks.discard)

    async def _extend_volume(self: ComputeAgent, instance_uuid: str, volume_id: str) -> None:
        try:
            async with self._locks[instance_uuid], tracing.span("WORK", "tell the hypervisor a volume grew"):
                instance = await self.conductor.instance_get(instance_uuid)
                bdm = next((b for b in instance["block_device_mapping"] if b["volume_id"] == volume_id), None)
                if bdm is None or not bdm.get("connection_info"):
                    log.warning("%s: volume-extended for %s, which %s does not have attached", self.host,
                                volume_id, instance_uuid)
                    return
                token = await self.service_tokens.token()  # an admin reads any project's volume in its own
                size = (await self.volume.get_volume(volume_id, project_id=self.service_tokens.project_id,
                                                     token=token))["size"]
                await self.driver.extend_volume(instance, bdm["connection_info"], bdm.get("device_name") or "",
                                                size * GiB)
        except LookupError:
            pass
        except Exception as exc:
            log.warning("%s: could not extend volume %s of %s: %s", self.host, volume_id, instance_uuid, exc)

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
