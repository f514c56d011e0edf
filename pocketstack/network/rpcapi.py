"""Client side of the network service's RPC interface for host agents (topic `network_plugin`).

Neutron's agents talk to the server the same way (`q-plugin`): they ask for the state of their host's devices
and report what they wired. The agent never opens the network database.
"""

from __future__ import annotations

from typing import Any

from pocketstack.common.rpc import RPCAPI

TOPIC = "network_plugin"


class PluginAPI(RPCAPI):
    topic = TOPIC
    namespace = "network_plugin"
    version = "1.1"  # 1.1: report_state

    async def get_host_state(self, host: str, dhcp: bool, l3: bool) -> dict[str, Any]:
        """Everything the agent of `host` wires: its ports, their networks and security groups; with `dhcp` every
        network with DHCP and its ports; with `l3` the routers and their floating IPs."""
        return await self.prepare().call("get_host_state", host=host, dhcp=dhcp, l3=l3)

    async def report_state(self, host: str, agents: list[dict[str, Any]], start: bool) -> None:
        """The agent's heartbeat: the functions it runs on `host` (`start`: its first since it started)."""
        await self.prepare(version="1.1").call("report_state", host=host, agents=agents, start=start)

    async def report_port_status(self, port_id: str, host: str, up: bool) -> None:
        await self.prepare().call("report_port_status", port_id=port_id, host=host, up=up)

    async def ensure_dhcp_port(self, network_id: str, host: str) -> dict[str, Any] | None:
        """The DHCP port of `host` on the network, with an address on each DHCP-enabled IPv4 subnet (None when
        the network has none)."""
        return await self.prepare().call("ensure_dhcp_port", network_id=network_id, host=host)

    async def release_dhcp_port(self, network_id: str, host: str) -> None:
        await self.prepare().call("release_dhcp_port", network_id=network_id, host=host)

    async def set_floatingip_statuses(self, statuses: dict[str, str]) -> None:
        await self.prepare().call("set_floatingip_statuses", statuses=statuses)
