"""Routers (external gateway, interfaces on subnets, static routes) and floating IPs.

A router's gateway and interfaces are ports owned by the router (`network:router_gateway`,
`network:router_interface`); a floating IP holds a `network:floatingip` port on the external network. The
routing itself (namespaces, NAT) belongs to the host data plane; this is the API and the address model.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.network import ipam
from pocketstack.network import models as m
from pocketstack.network.agents import Agents
from pocketstack.network.manager import new_id, not_found, stamp, standard
from pocketstack.network.notifier import CHANGED, VifEvent
from pocketstack.network.ports import L3_OWNERS, Ports
from pocketstack.network.subnetpools import SubnetPools

GATEWAY, INTERFACE, FLOATING = "network:router_gateway", "network:router_interface", "network:floatingip"


def bad(message: str) -> BadRequest:
    return BadRequest(message, error_type="BadRequest")


class L3(Ports):
    # ----- routers ------------------------------------------------------------------------------------------
    async def router_view(self, session: AsyncSession, router: m.Router) -> dict[str, Any]:
        gateway = None
        if router.gw_port_id:
            port = await session.get(m.Port, router.gw_port_id)
            if port is not None:
                gateway = {"network_id": port.network_id, "enable_snat": router.enable_snat,
                           "external_fixed_ips": [{"subnet_id": a.subnet_id, "ip_address": a.ip_address}
                                                  for a in port.fixed_ips]}
        return {"id": router.id, "name": router.name, **standard(router), "admin_state_up": router.admin_state_up,
                "status": router.status, "external_gateway_info": gateway, "routes": router.routes,
                "availability_zones": [], "availability_zone_hints": []}

    async def visible_router(self, session: AsyncSession, ctx: RequestContext, router_id: str) -> m.Router:
        router = await session.get(m.Router, router_id)
        if router is None or not self.allowed("get_router", ctx, {"project_id": router.project_id}):
            raise not_found("router", router_id)
        return router

    async def list_routers(self, ctx: RequestContext) -> list[dict[str, Any]]:
        async def _read(session: AsyncSession) -> Any:
            rows = await session.scalars(select(m.Router).order_by(m.Router.created_at, m.Router.id))
            return [await self.router_view(session, r) for r in rows
                    if self.allowed("get_router", ctx, {"project_id": r.project_id})]

        return await self.db.run(_read, write=False)

    async def get_router(self, ctx: RequestContext, router_id: str) -> dict[str, Any]:
        async def _read(session: AsyncSession) -> Any:
            return await self.router_view(session, await self.visible_router(session, ctx, router_id))

        return await self.db.run(_read, write=False)

    async def interface_ports(self, session: AsyncSession, router_id: str) -> list[m.Port]:
        return list(await session.scalars(select(m.Port).where(m.Port.device_id == router_id,
                                                               m.Port.device_owner == INTERFACE)))

    async def _set_gateway(self, session: AsyncSession, ctx: RequestContext, router: m.Router,
                           info: dict[str, Any] | None) -> None:
        current = await session.get(m.Port, router.gw_port_id) if router.gw_port_id else None
        if not info or not info.get("network_id"):
            if current is not None:
                await self._check_no_floating_ips(session, router, current.network_id)
                router.gw_port_id = None
                await session.flush()
                await session.delete(current)
            return
        net = await session.run_sync(self.visible_network, ctx, info["network_id"])
        if not net.external:
            raise bad(f"Invalid input for external_gateway_info. Reason: Network {net.id} is not a valid "
                      "external network.")
        router.enable_snat = info.get("enable_snat", True)
        if current is not None and current.network_id == net.id and "external_fixed_ips" not in info:
            return
        if current is not None:
            if current.network_id != net.id:
                await self._check_no_floating_ips(session, router, current.network_id)
            router.gw_port_id = None
            await session.flush()
            await session.delete(current)
            await session.flush()
        fixed = info.get("external_fixed_ips")
        port = await session.run_sync(self.build_port, ctx, net, "", {
            "device_owner": GATEWAY, "device_id": router.id, "fixed_ips": fixed or None,
            "admin_state_up": True}, internal=True)
        router.gw_port_id = port.id

    async def _check_no_floating_ips(self, session: AsyncSession, router: m.Router, network_id: str) -> None:
        if await session.scalar(select(m.FloatingIP.id).where(m.FloatingIP.router_id == router.id,
                                                              m.FloatingIP.floating_network_id == network_id)):
            raise Conflict(f"Gateway cannot be updated for router {router.id}, since a gateway to external "
                           f"network {network_id} is required by one or more floating IPs.",
                           error_type="RouterExternalGatewayInUseByFloatingIp")

    async def _router_routes(self, session: AsyncSession, router: m.Router, routes: list[dict[str, str]]
                      ) -> list[dict[str, str]]:
        cidrs = []
        for port in await self.interface_ports(session, router.id):
            for allocation in port.fixed_ips:
                subnet = await session.get(m.Subnet, allocation.subnet_id)
                if subnet is not None:
                    cidrs.append(ipaddress.ip_network(subnet.cidr))
        out = []
        for route in routes:
            try:
                dest = ipaddress.ip_network(route["destination"])
                hop = ipaddress.ip_address(route["nexthop"])
            except (ValueError, KeyError):
                raise BadRequest(f"Invalid format for routes: {route}", error_type="InvalidRoutes")
            if not any(hop in cidr for cidr in cidrs):
                raise BadRequest(f"Invalid format for routes: {route}, the nexthop is not connected with the "
                                 "router.", error_type="InvalidRoutes")
            out.append({"destination": str(dest), "nexthop": str(hop)})
        return out

    def _enforce_gateway(self, action: str, ctx: RequestContext, info: dict[str, Any] | None,
                         target: dict[str, Any]) -> None:
        for attr in ("enable_snat", "external_fixed_ips"):
            if info and attr in info:
                self.enforce(f"{action}:external_gateway_info:{attr}", ctx, target)

    async def create_router(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        project_id = self.owner_project(ctx, data)
        target = {"project_id": project_id}
        self.enforce("create_router", ctx, target)
        self._enforce_gateway("create_router", ctx, data.get("external_gateway_info"), target)

        async def create(session: AsyncSession) -> dict[str, Any]:
            await session.run_sync(self.check_quota, project_id, "router")
            router = m.Router(id=new_id(), project_id=project_id, name=data.get("name", ""),
                              description=data.get("description", ""),
                              admin_state_up=data.get("admin_state_up", True), routes=[])
            stamp(router, created=True)
            session.add(router)
            await session.flush()
            await self._set_gateway(session, ctx, router, data.get("external_gateway_info"))
            await session.flush()
            return await self.router_view(session, router)

        return await self.write(create)

    async def update_router(self, ctx: RequestContext, router_id: str, data: dict[str, Any]) -> dict[str, Any]:
        async def update(session: AsyncSession) -> dict[str, Any]:
            router = await self.visible_router(session, ctx, router_id)
            target = {"project_id": router.project_id}
            self.enforce("update_router", ctx, target)
            if "external_gateway_info" in data:
                self._enforce_gateway("update_router", ctx, data["external_gateway_info"], target)
                await self._set_gateway(session, ctx, router, data["external_gateway_info"])
            if "routes" in data:
                router.routes = await self._router_routes(session, router, data["routes"] or [])
            for attr in ("name", "description", "admin_state_up"):
                if attr in data:
                    setattr(router, attr, data[attr])
            stamp(router)
            await session.flush()
            return await self.router_view(session, router)

        return await self.write(update)

    async def delete_router(self, ctx: RequestContext, router_id: str) -> None:
        async def delete(session: AsyncSession) -> None:
            router = await self.visible_router(session, ctx, router_id)
            self.enforce("delete_router", ctx, {"project_id": router.project_id})
            if await self.interface_ports(session, router.id):
                raise Conflict(f"Router {router.id} still has ports", error_type="RouterInUse")
            if await session.scalar(select(m.FloatingIP.id).where(m.FloatingIP.router_id == router.id)):
                raise Conflict(f"Router {router.id} is still used by floating IPs", error_type="RouterInUse")
            await self._set_gateway(session, ctx, router, None)
            await session.flush()
            await session.delete(router)

        await self.write(delete)

    @staticmethod
    def _interface_body(router: m.Router, port: m.Port, subnet_ids: list[str]) -> dict[str, Any]:
        return {"id": router.id, "tenant_id": router.project_id, "project_id": router.project_id,
                "port_id": port.id, "network_id": port.network_id, "subnet_id": subnet_ids[0] if subnet_ids
                else None, "subnet_ids": subnet_ids}

    async def add_router_interface(self, ctx: RequestContext, router_id: str, data: dict[str, Any]
                                   ) -> dict[str, Any]:
        if bool(data.get("subnet_id")) == bool(data.get("port_id")):
            raise bad("Bad router request: Either subnet_id or port_id must be specified.")

        async def add(session: AsyncSession) -> dict[str, Any]:
            router = await self.visible_router(session, ctx, router_id)
            self.enforce("add_router_interface", ctx, {"project_id": router.project_id})
            attached = {a.subnet_id for p in await self.interface_ports(session, router.id) for a in p.fixed_ips}
            attached_cidrs = [s.cidr for s in [await session.get(m.Subnet, sid) for sid in attached] if s]
            if data.get("port_id"):
                port, net = await session.run_sync(self.visible_port, ctx, data["port_id"])
                if port.device_id or port.device_owner:
                    raise Conflict(f"Port {port.id} is in use by {port.device_owner or 'a device'} "
                                   f"{port.device_id}.", error_type="PortInUse")
                if not port.fixed_ips:
                    raise bad(f"Bad router request: Router port must have at least one fixed IP: {port.id}")
                subnet_ids = [a.subnet_id for a in port.fixed_ips]
                for sid in subnet_ids:
                    subnet = await session.get(m.Subnet, sid)
                    if subnet is not None and ipam.overlapping(ipaddress.ip_network(subnet.cidr), attached_cidrs):
                        raise bad(f"Bad router request: Cidr {subnet.cidr} of subnet {sid} overlaps with cidr "
                                  f"of a subnet already attached to router {router.id}.")
                port.device_id, port.device_owner = router.id, INTERFACE
                port.security_group_bindings = []
                stamp(port)
            else:
                subnet, net = await self.visible_subnet(session, ctx, data["subnet_id"])
                if not (ctx.is_admin or net.shared or net.project_id == router.project_id):
                    raise not_found("subnet", subnet.id)
                if not subnet.gateway_ip:
                    raise bad(f"Bad router request: Subnet for router interface must have a gateway IP: "
                              f"{subnet.id}")
                if subnet.id in attached:
                    raise bad(f"Bad router request: Router already has a port on subnet {subnet.id}.")
                if ipam.overlapping(ipaddress.ip_network(subnet.cidr), attached_cidrs):
                    raise bad(f"Bad router request: Cidr {subnet.cidr} of subnet {subnet.id} overlaps with cidr "
                              f"of a subnet already attached to router {router.id}.")
                port = await session.run_sync(self.build_port, ctx, net, router.project_id, {
                    "device_owner": INTERFACE, "device_id": router.id, "admin_state_up": True,
                    "fixed_ips": [{"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}]},
                    allow_gateway=True, internal=True)
                subnet_ids = [subnet.id]
            stamp(router)
            await session.flush()
            return self._interface_body(router, port, subnet_ids)

        return await self.write(add)

    async def remove_router_interface(self, ctx: RequestContext, router_id: str, data: dict[str, Any]
                                      ) -> dict[str, Any]:
        if not data.get("subnet_id") and not data.get("port_id"):
            raise bad("Bad router request: Either subnet_id or port_id must be specified.")

        async def remove(session: AsyncSession) -> dict[str, Any]:
            router = await self.visible_router(session, ctx, router_id)
            self.enforce("remove_router_interface", ctx, {"project_id": router.project_id})
            ports = await self.interface_ports(session, router.id)
            if data.get("port_id"):
                port = next((p for p in ports if p.id == data["port_id"]), None)
                if port is None:
                    raise NotFound(f"Router {router.id} does not have an interface with id {data['port_id']}",
                                   error_type="RouterInterfaceNotFound")
                if data.get("subnet_id") and data["subnet_id"] not in {a.subnet_id for a in port.fixed_ips}:
                    raise bad(f"Bad router request: Subnet {data['subnet_id']} is not on port {port.id}.")
            else:
                port = next((p for p in ports if data["subnet_id"] in {a.subnet_id for a in p.fixed_ips}), None)
                if port is None:
                    raise NotFound(f"Router {router.id} has no interface on subnet {data['subnet_id']}",
                                   error_type="RouterInterfaceNotFoundForSubnet")
            subnet_ids = [a.subnet_id for a in port.fixed_ips]
            for fip in await session.scalars(select(m.FloatingIP).where(m.FloatingIP.router_id == router.id)):
                fixed = await session.get(m.Port, fip.fixed_port_id) if fip.fixed_port_id else None
                if fixed is not None and {a.subnet_id for a in fixed.fixed_ips} & set(subnet_ids):
                    raise Conflict(f"Router interface for subnet {subnet_ids[0]} on router {router.id} cannot be "
                                   "deleted, as it is required by one or more floating IPs.",
                                   error_type="RouterInterfaceInUseByFloatingIP")
            body = self._interface_body(router, port, subnet_ids)
            await session.delete(port)
            stamp(router)
            return body

        return await self.write(remove)

    # ----- floating IPs -------------------------------------------------------------------------------------
    def fip_view(self, fip: m.FloatingIP) -> dict[str, Any]:
        return {"id": fip.id, **standard(fip), "floating_ip_address": fip.floating_ip_address,
                "floating_network_id": fip.floating_network_id, "router_id": fip.router_id,
                "port_id": fip.fixed_port_id, "fixed_ip_address": fip.fixed_ip_address, "status": fip.status}

    async def visible_fip(self, session: AsyncSession, ctx: RequestContext, fip_id: str) -> m.FloatingIP:
        fip = await session.get(m.FloatingIP, fip_id)
        if fip is None or not self.allowed("get_floatingip", ctx, {"project_id": fip.project_id}):
            raise not_found("floatingip", fip_id)
        return fip

    async def list_floatingips(self, ctx: RequestContext) -> list[dict[str, Any]]:
        async def _read(session: AsyncSession) -> Any:
            rows = await session.scalars(select(m.FloatingIP).order_by(m.FloatingIP.created_at, m.FloatingIP.id))
            return [self.fip_view(f) for f in rows
                    if self.allowed("get_floatingip", ctx, {"project_id": f.project_id})]

        return await self.db.run(_read, write=False)

    async def get_floatingip(self, ctx: RequestContext, fip_id: str) -> dict[str, Any]:
        async def _read(session: AsyncSession) -> Any:
            return self.fip_view(await self.visible_fip(session, ctx, fip_id))

        return await self.db.run(_read, write=False)

    async def _associate(self, session: AsyncSession, ctx: RequestContext, fip: m.FloatingIP,
                         port_id: str | None, fixed_ip: str | None) -> None:
        if port_id is None:
            fip.fixed_port_id = fip.fixed_ip_address = fip.router_id = None
            fip.status = "DOWN"
            return
        port, _ = await session.run_sync(self.visible_port, ctx, port_id)
        if port.project_id != fip.project_id and not ctx.is_admin:
            raise not_found("port", port_id)
        if port.device_owner in L3_OWNERS:
            raise bad(f"Bad floatingip request: Port {port.id} has owner {port.device_owner} and therefore "
                      "cannot be associated with a floating IP.")
        v4 = [a for a in port.fixed_ips if ipaddress.ip_address(a.ip_address).version == 4]
        if fixed_ip is not None:
            chosen = next((a for a in v4 if a.ip_address == fixed_ip), None)
            if chosen is None:
                raise bad(f"Bad floatingip request: Port {port.id} does not have fixed ip {fixed_ip}.")
        elif len(v4) == 1:
            chosen = v4[0]
        elif not v4:
            raise bad(f"Bad floatingip request: Port {port.id} does not have any IPv4 address.")
        else:
            raise bad(f"Bad floatingip request: Port {port.id} has multiple fixed IPv4 addresses. Must provide "
                      "a specific IPv4 address when assigning a floating IP.")
        other = await session.scalar(select(m.FloatingIP).where(
            m.FloatingIP.fixed_port_id == port.id, m.FloatingIP.fixed_ip_address == chosen.ip_address,
            m.FloatingIP.id != fip.id))
        if other is not None:
            raise Conflict(f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with port "
                           f"{port.id} using fixed IP {chosen.ip_address}, as that fixed IP already has a floating "
                           f"IP on external network {other.floating_network_id}.",
                           error_type="FloatingIPPortAlreadyAssociated")
        router_id = None
        for router in await session.scalars(select(m.Router).where(m.Router.gw_port_id.is_not(None))):
            gw = await session.get(m.Port, router.gw_port_id)
            if gw is None or gw.network_id != fip.floating_network_id:
                continue
            if any(a.subnet_id == chosen.subnet_id for p in await self.interface_ports(session, router.id)
                   for a in p.fixed_ips):
                router_id = router.id
                break
        if router_id is None:
            raise NotFound(f"External network {fip.floating_network_id} is not reachable from subnet "
                           f"{chosen.subnet_id}. Therefore, cannot associate Port {port.id} with a Floating IP.",
                           error_type="ExternalGatewayForFloatingIPNotFound")
        fip.fixed_port_id, fip.fixed_ip_address, fip.router_id = port.id, chosen.ip_address, router_id

    async def create_floatingip(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        project_id = self.owner_project(ctx, data)
        target = {"project_id": project_id}
        self.enforce("create_floatingip", ctx, target)
        self.enforce_attrs("create_floatingip", ctx, data, target)

        async def create(session: AsyncSession) -> dict[str, Any]:
            net = await session.run_sync(self.visible_network, ctx, data["floating_network_id"])
            if not net.external:
                raise bad(f"Bad floatingip request: Network {net.id} is not a valid external network.")
            await session.run_sync(self.check_quota, project_id, "floatingip")
            subnets = [s for s in net.subnets if s.ip_version == 4]
            if data.get("subnet_id"):
                subnets = [s for s in subnets if s.id == data["subnet_id"]]
                if not subnets:
                    raise bad(f"Bad floatingip request: Subnet {data['subnet_id']} is not an IPv4 subnet of "
                              f"network {net.id}.")
            if not subnets:
                raise bad(f"Bad floatingip request: Network {net.id} does not contain any IPv4 subnet")
            fip = m.FloatingIP(id=new_id(), project_id=project_id, floating_network_id=net.id,
                               description=data.get("description", ""), status="DOWN")
            if data.get("floating_ip_address"):
                fixed = [{"ip_address": data["floating_ip_address"],
                          **({"subnet_id": data["subnet_id"]} if data.get("subnet_id") else {})}]
                port = await session.run_sync(self.build_port, ctx, net, "", {
                    "device_owner": FLOATING, "device_id": fip.id, "fixed_ips": fixed}, internal=True)
            else:
                for index, subnet in enumerate(subnets):  # the first IPv4 subnet with a free address
                    try:
                        await session.run_sync(ipam.pick_address, subnet)
                        break
                    except Conflict:
                        if index == len(subnets) - 1:
                            raise
                port = await session.run_sync(self.build_port, ctx, net, "", {
                    "device_owner": FLOATING, "device_id": fip.id, "fixed_ips": [{"subnet_id": subnet.id}]},
                    internal=True)
            fip.floating_port_id = port.id
            fip.floating_ip_address = port.fixed_ips[0].ip_address
            stamp(fip, created=True)
            session.add(fip)
            await session.flush()
            if data.get("port_id"):
                await self._associate(session, ctx, fip, data["port_id"], data.get("fixed_ip_address"))
                await session.flush()
                changed.extend(await self._server_port_events(session, {fip.fixed_port_id}))
            return self.fip_view(fip)

        changed: list[VifEvent] = []
        view = await self.write(create)
        self._tell_compute(changed)
        return view

    async def update_floatingip(self, ctx: RequestContext, fip_id: str, data: dict[str, Any]) -> dict[str, Any]:
        async def update(session: AsyncSession) -> dict[str, Any]:
            fip = await self.visible_fip(session, ctx, fip_id)
            self.enforce("update_floatingip", ctx, {"project_id": fip.project_id})
            before = (fip.fixed_port_id, fip.fixed_ip_address)
            if "port_id" in data:
                await self._associate(session, ctx, fip, data["port_id"], data.get("fixed_ip_address"))
            elif data.get("fixed_ip_address") and fip.fixed_port_id:
                await self._associate(session, ctx, fip, fip.fixed_port_id, data["fixed_ip_address"])
            if "description" in data:
                fip.description = data["description"]
            stamp(fip)
            await session.flush()
            if before != (fip.fixed_port_id, fip.fixed_ip_address):
                changed.extend(await self._server_port_events(session, {before[0], fip.fixed_port_id}))
            return self.fip_view(fip)

        changed: list[VifEvent] = []
        view = await self.write(update)
        self._tell_compute(changed)
        return view

    async def delete_floatingip(self, ctx: RequestContext, fip_id: str) -> None:
        async def delete(session: AsyncSession) -> None:
            fip = await self.visible_fip(session, ctx, fip_id)
            self.enforce("delete_floatingip", ctx, {"project_id": fip.project_id})
            port = await session.get(m.Port, fip.floating_port_id)
            changed.extend(await self._server_port_events(session, {fip.fixed_port_id}))
            await session.delete(fip)
            await session.flush()
            if port is not None:
                await session.delete(port)

        changed: list[VifEvent] = []
        await self.write(delete)
        self._tell_compute(changed)

    @staticmethod
    async def _server_port_events(session: AsyncSession, port_ids: set[str | None]) -> list[VifEvent]:
        """`network-changed` for each of these ports that belongs to a server (a floating IP moved on or off)."""
        events = []
        for port_id in sorted(i for i in port_ids if i):
            port = await session.get(m.Port, port_id)
            if port is not None and port.device_owner.startswith("compute:") and port.device_id:
                events.append(VifEvent(CHANGED, port.device_id, port.id))
        return events

    def _tell_compute(self, events: list[VifEvent]) -> None:
        if events:
            self.notifier.notify(events)


class NetworkManager(L3, Agents, SubnetPools):
    """Everything the network API does, without HTTP."""

    # ----- tags (standard-attr-tag) -------------------------------------------------------------------------
    async def _taggable(self, session: AsyncSession, ctx: RequestContext, kind: str, resource_id: str
                        ) -> tuple[Any, dict[str, Any]]:
        """The resource to tag and its policy target (404 when the caller cannot see it)."""
        if kind == "network":
            net = await session.run_sync(self.visible_network, ctx, resource_id)
            return net, self.network_target(net)
        if kind == "subnet":
            subnet, net = await self.visible_subnet(session, ctx, resource_id)
            return subnet, self.subnet_target(subnet, net)
        if kind == "port":
            port, net = await session.run_sync(self.visible_port, ctx, resource_id)
            return port, self.port_target(port.project_id, net, port.device_owner)
        loaders = {"router": self.visible_router, "floatingip": self.visible_fip,
                   "security_group": self.visible_sg, "subnetpool": self.visible_subnetpool}
        row = await loaders[kind](session, ctx, resource_id)
        return row, {"project_id": row.project_id}

    async def get_tags(self, ctx: RequestContext, kind: str, resource_id: str) -> list[str]:
        async def _read(session: AsyncSession) -> Any:
            row, _ = await self._taggable(session, ctx, kind, resource_id)
            return list(row.tags or [])

        return await self.db.run(_read, write=False)

    async def change_tags(self, ctx: RequestContext, kind: str, resource_id: str,
                          change: Callable[[list[str]], list[str]]) -> list[str]:
        """Apply `change` to the resource's tags in one transaction (policy: the resource's update rule)."""
        async def update(session: AsyncSession) -> list[str]:
            row, target = await self._taggable(session, ctx, kind, resource_id)
            self.enforce(f"update_{kind}", ctx, target)
            row.tags = list(dict.fromkeys(change(list(row.tags or []))))
            stamp(row)
            return list(row.tags)

        return await self.write(update)
