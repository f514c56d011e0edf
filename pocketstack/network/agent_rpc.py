"""The network service's side of the host agents' RPC (Neutron's plugin RPC handlers and agent notifier).

`PluginEndpoint` (topic `network_plugin`) answers agents: the state of a host's devices, port status reports,
DHCP ports, floating IP statuses. `AgentNotifier` tells every agent (fanout on `network_agent`) after each
change to the network database; agents then fetch their host's state again (level-triggered: a lost or
coalesced notification costs nothing but a resync, which also runs periodically).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.context import RequestContext
from pocketstack.common.rpc import RPCEndpoint, RPCError, Transport
from pocketstack.network import models as m
from pocketstack.network.agent.rpcapi import AgentAPI
from pocketstack.network.l3 import GATEWAY, INTERFACE, NetworkManager
from pocketstack.network.manager import stamp
from pocketstack.network.secgroups import PROTOCOLS

log = logging.getLogger("pocketstack.network")

DHCP_OWNER = "network:dhcp"
SERVICE_CONTEXT = RequestContext(user_name="network-agent", roles=["admin"])


def dhcp_device_id(host: str, network_id: str) -> str:
    """The device id of a host's DHCP port on a network (Neutron's `dhcp<host uuid>-<network id>`)."""
    return f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, host)}-{network_id}"


def port_state(port: m.Port) -> dict[str, Any]:
    return {"id": port.id, "network_id": port.network_id, "project_id": port.project_id,
            "mac_address": port.mac_address, "device_id": port.device_id, "device_owner": port.device_owner,
            "status": port.status, "admin_state_up": port.admin_state_up, "binding_host_id": port.binding_host_id,
            "fixed_ips": [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips],
            "port_security_enabled": port.port_security_enabled,
            "security_groups": [b.security_group_id for b in port.security_group_bindings],
            "allowed_address_pairs": list(port.allowed_address_pairs or []),
            "extra_dhcp_opts": list(port.extra_dhcp_opts or [])}


def rule_state(rule: m.SecurityGroupRule) -> dict[str, Any]:
    protocol: int | None = None
    if rule.protocol is not None:
        protocol = int(rule.protocol) if rule.protocol.isdigit() else PROTOCOLS[rule.protocol]
        if protocol == 1 and rule.ethertype == "IPv6":  # Neutron: "icmp" on IPv6 means ICMPv6
            protocol = 58
    return {"direction": rule.direction, "ethertype": rule.ethertype, "protocol": protocol,
            "port_range_min": rule.port_range_min, "port_range_max": rule.port_range_max,
            "remote_ip_prefix": rule.remote_ip_prefix, "remote_group_id": rule.remote_group_id}


class PluginEndpoint(RPCEndpoint):
    namespace = "network_plugin"
    version = "1.1"  # 1.1: report_state

    def __init__(self, manager: NetworkManager) -> None:
        self._manager = manager

    def _network_state(self, net: m.Network) -> dict[str, Any]:
        return {"id": net.id, "name": net.name, "project_id": net.project_id, "network_type": net.network_type,
                "physical_network": net.physical_network, "segmentation_id": net.segmentation_id, "mtu": net.mtu,
                "external": net.external, "admin_state_up": net.admin_state_up,
                "bridge": self._manager.bridge_name(net),
                "subnets": [{"id": s.id, "cidr": s.cidr, "ip_version": s.ip_version, "gateway_ip": s.gateway_ip,
                             "enable_dhcp": s.enable_dhcp, "dns_nameservers": list(s.dns_nameservers or []),
                             "host_routes": list(s.host_routes or [])} for s in net.subnets]}

    async def get_host_state(self, host: str, dhcp: bool, l3: bool) -> dict[str, Any]:
        async def _read(session: AsyncSession) -> Any:
            host_ports = list(await session.scalars(select(m.Port).where(m.Port.binding_host_id == host)))
            wanted = {p.network_id for p in host_ports}
            dhcp_networks: dict[str, list[dict[str, Any]]] = {}
            if dhcp:
                ids = list(await session.scalars(select(m.Subnet.network_id).join(
                    m.Network, m.Network.id == m.Subnet.network_id).where(
                    m.Subnet.enable_dhcp.is_(True), m.Subnet.ip_version == 4,
                    m.Network.admin_state_up.is_(True)).distinct()))
                by_net: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for port in await session.scalars(select(m.Port).where(m.Port.network_id.in_(ids))):
                    by_net[port.network_id].append(port_state(port))
                dhcp_networks = {i: by_net[i] for i in ids}
                wanted |= set(ids)
            routers = await self._routers(session) if l3 else []
            for router in routers:
                for port in [router["gateway"], *router["interfaces"]]:
                    if port is not None:
                        wanted.add(port["network_id"])
            groups = await self._security_groups(session, host_ports)
            # read last: every network the rows above name is there unless it was deleted meanwhile
            nets = {n.id: n for n in await session.scalars(select(m.Network).where(m.Network.id.in_(wanted)))}
            return host_ports, dhcp_networks, routers, groups, nets

        host_ports, dhcp_networks, routers, groups, nets = await self._manager.db.run(_read, write=False)
        return {"host": host, "networks": {i: self._network_state(n) for i, n in nets.items()},
                "ports": [port_state(p) for p in host_ports], "dhcp_networks": dhcp_networks,
                "routers": routers, **groups}

    async def _security_groups(self, session: AsyncSession, ports: list[m.Port]) -> dict[str, Any]:
        """Rules of the groups of the host's filtered ports, and the member addresses of remote groups."""
        ids = {b.security_group_id for p in ports if p.port_security_enabled for b in p.security_group_bindings}
        groups = list(await session.scalars(select(m.SecurityGroup).where(m.SecurityGroup.id.in_(ids))))
        remote = {r.remote_group_id for g in groups for r in g.rules if r.remote_group_id}
        members: dict[str, list[str]] = defaultdict(list)
        rows = await session.execute(
            select(m.PortSecurityGroup.security_group_id, m.IPAllocation.ip_address).join(
                m.IPAllocation, m.IPAllocation.port_id == m.PortSecurityGroup.port_id).where(
                m.PortSecurityGroup.security_group_id.in_(remote)))
        for group_id, ip in rows:
            members[group_id].append(ip)
        return {"security_groups": {g.id: [rule_state(r) for r in g.rules] for g in groups},
                "remote_group_ips": {g: sorted(set(members[g])) for g in remote}}

    async def _routers(self, session: AsyncSession) -> list[dict[str, Any]]:
        ports = {p.id: p for p in await session.scalars(
            select(m.Port).where(m.Port.device_owner.in_((GATEWAY, INTERFACE))))}
        fips: dict[str, list[m.FloatingIP]] = defaultdict(list)
        for fip in await session.scalars(select(m.FloatingIP).where(m.FloatingIP.router_id.is_not(None))):
            fips[fip.router_id or ""].append(fip)
        out = []
        for router in await session.scalars(select(m.Router).order_by(m.Router.created_at)):
            gateway = ports.get(router.gw_port_id or "")
            out.append({
                "id": router.id, "name": router.name, "project_id": router.project_id,
                "admin_state_up": router.admin_state_up, "enable_snat": router.enable_snat,
                "routes": list(router.routes or []),
                "gateway": port_state(gateway) if gateway is not None else None,
                "interfaces": [port_state(p) for p in ports.values()
                               if p.device_owner == INTERFACE and p.device_id == router.id],
                "floating_ips": [{"id": f.id, "floating_ip_address": f.floating_ip_address,
                                  "fixed_ip_address": f.fixed_ip_address, "port_id": f.fixed_port_id,
                                  "status": f.status} for f in fips[router.id] if f.fixed_ip_address]})
        return out

    async def report_port_status(self, port_id: str, host: str, up: bool) -> None:
        await self._manager.report_port_status(port_id, host, up)

    async def report_state(self, host: str, agents: list[dict[str, Any]], start: bool) -> None:
        await self._manager.report_agent_state(host, agents, start)

    async def ensure_dhcp_port(self, network_id: str, host: str) -> dict[str, Any] | None:
        device_id = dhcp_device_id(host, network_id)

        async def ensure(session: AsyncSession) -> dict[str, Any] | None:
            net = await session.get(m.Network, network_id)
            if net is None:
                return None
            subnets = [s for s in net.subnets if s.enable_dhcp and s.ip_version == 4]
            port = await session.scalar(select(m.Port).where(
                m.Port.network_id == network_id, m.Port.device_owner == DHCP_OWNER, m.Port.device_id == device_id))
            if not subnets:
                return None
            if port is None:
                port = await session.run_sync(self._manager.build_port, SERVICE_CONTEXT, net, net.project_id, {
                    "device_owner": DHCP_OWNER, "device_id": device_id, "binding:host_id": host,
                    "fixed_ips": [{"subnet_id": s.id} for s in subnets]}, internal=True)
            else:
                have = {a.subnet_id for a in port.fixed_ips}
                missing = [{"subnet_id": s.id} for s in subnets if s.id not in have]
                if missing:
                    await session.run_sync(self._manager._allocate, port, net, missing)
                    stamp(port)
            return port_state(port)

        return await self._manager.write(ensure)

    async def release_dhcp_port(self, network_id: str, host: str) -> None:
        device_id = dhcp_device_id(host, network_id)

        async def release(session: AsyncSession) -> None:
            for port in await session.scalars(select(m.Port).where(
                    m.Port.network_id == network_id, m.Port.device_owner == DHCP_OWNER,
                    m.Port.device_id == device_id)):
                await session.delete(port)

        await self._manager.write(release)

    async def set_floatingip_statuses(self, statuses: dict[str, str]) -> None:
        async def update(session: AsyncSession) -> None:
            for fip_id, status in statuses.items():
                fip = await session.get(m.FloatingIP, fip_id)
                if fip is not None and fip.status != status:
                    fip.status = status
                    stamp(fip)

        await self._manager.write(update, notify=False)


class AgentNotifier:
    """Fanout `state_changed` to the agents after writes; writes close together share one message."""

    def __init__(self, transport: Transport) -> None:
        self.api = AgentAPI(transport)
        self._pending = False
        self._tasks: set[asyncio.Task[None]] = set()

    def changed(self) -> None:
        if self._pending:
            return
        self._pending = True
        task = asyncio.get_running_loop().create_task(self._send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self) -> None:
        await asyncio.sleep(0)  # let the writes of this moment join the message
        self._pending = False
        try:
            await self.api.state_changed()
        except RPCError as exc:
            log.warning("could not notify the network agents: %s", exc)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

