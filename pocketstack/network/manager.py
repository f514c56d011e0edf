"""The network service's logic (no HTTP here): shared plumbing of the managers, networks, subnets, quotas and
IP availability. Ports are in `ports.py`, security groups in `secgroups.py`, routers and floating IPs in
`l3.py`; `NetworkManager` puts them together.

Every write runs in one transaction (`write`), retried when a unique key says a concurrent transaction won a
race (an IP address, a MAC address, a segment, a project's default security group), so nothing is
half-written and concurrent requests end in the same state as serial ones.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from pocketstack.common.clients.compute_events import ComputeNotifier
from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.common.policy import PolicyEngine
from pocketstack.network import ipam
from pocketstack.network import models as m
from pocketstack.network.policies import NETWORK_POLICIES
from pocketstack.settings import Settings

T = TypeVar("T")
WRITE_ATTEMPTS = 10

QUOTA_RESOURCES = {
    "network": m.Network, "subnet": m.Subnet, "port": m.Port, "router": m.Router, "floatingip": m.FloatingIP,
    "security_group": m.SecurityGroup, "security_group_rule": m.SecurityGroupRule,
}
SEGMENT_RANGES = {"vlan": (1, 4094), "vxlan": (1, (1 << 24) - 1)}
SEGMENT_IN_USE = {"flat": "FlatNetworkInUse", "vlan": "VlanIdInUse", "vxlan": "TunnelIdInUse"}
OVERLAY_OVERHEAD = {"vxlan": 50}


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Now, to the second: Neutron's timestamps have no fraction."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def isotime(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def standard(row: Any) -> dict[str, Any]:
    """Standard attributes plus project/tenant id of a row."""
    return {"description": row.description, "created_at": isotime(row.created_at),
            "updated_at": isotime(row.updated_at), "revision_number": row.revision_number,
            "project_id": row.project_id, "tenant_id": row.project_id, "tags": list(row.tags or [])}


def stamp(row: Any, *, created: bool = False) -> None:
    now = utcnow()
    if created:
        row.created_at = now
        row.revision_number = 0
    else:
        row.revision_number = (row.revision_number or 0) + 1
    row.updated_at = now


def not_found(kind: str, resource_id: str) -> NotFound:
    names = {"network": "Network", "subnet": "Subnet", "port": "Port", "router": "Router",
             "floatingip": "FloatingIP", "security_group": "SecurityGroup",
             "security_group_rule": "SecurityGroupRule"}
    name = names[kind]
    label = {"floatingip": "Floating IP", "security_group": "Security group",
             "security_group_rule": "Security group rule"}.get(kind, name)
    return NotFound(f"{label} {resource_id} could not be found.", error_type=f"{name}NotFound")


class Core:
    """Database, policy, settings and the helpers every part of the network manager uses."""

    def __init__(self, settings: Settings, db: Database, notifier: ComputeNotifier) -> None:
        self.settings = settings
        self.conf = settings.network
        self.db = db
        self.notifier = notifier
        self.policy = PolicyEngine(NETWORK_POLICIES, settings.policy_file)
        self.write_retries = 0  # transactions retried after losing a unique-key race (observability, bench)
        self.on_change: Callable[[], None] | None = None  # told after each write (the host agents' notifier)

    # ----- transactions and policy --------------------------------------------------------------------------
    async def write(self, fn: Callable[[AsyncSession], Awaitable[T]], *, notify: bool = True) -> T:
        """Run `fn` in one write transaction; retry it when a concurrent transaction took the same unique key.

        `notify`: tell `on_change` once committed (not for status reports that change nothing agents wire).
        """

        return await self._retrying(lambda: self.db.run(fn, write=True), notify)

    async def write_sync(self, fn: Callable[[Session], T], *, notify: bool = True) -> T:
        """`write` for synchronous ORM code: one `Database.run` transaction, one thread hop (the hot paths)."""
        return await self._retrying(lambda: self.db.run(fn, write=True), notify)

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], notify: bool) -> T:
        for number in range(WRITE_ATTEMPTS):
            try:
                result = await attempt()
                if notify and self.on_change is not None:
                    self.on_change()
                return result
            except IntegrityError:
                self.write_retries += 1
                if number == WRITE_ATTEMPTS - 1:
                    raise Conflict("The request conflicted with concurrent changes; try again.")
                await asyncio.sleep(random.uniform(0, 0.01 * (number + 1)))
        raise AssertionError("unreachable")

    def allowed(self, action: str, ctx: RequestContext, target: dict[str, Any],
                memo: dict[Any, bool] | None = None) -> bool:
        """A policy check; `memo` (one per list request) remembers answers for targets already seen."""
        if memo is None:
            return self.policy.check(action, ctx, target)
        key = (action, *sorted(target.items()))
        if key not in memo:
            memo[key] = self.policy.check(action, ctx, target)
        return memo[key]

    def enforce(self, action: str, ctx: RequestContext, target: dict[str, Any]) -> None:
        self.policy.enforce(action, ctx, target)

    def enforce_attrs(self, action: str, ctx: RequestContext, data: dict[str, Any], target: dict[str, Any],
                      defaults: dict[str, Any] | None = None) -> None:
        """Attribute-level rules (`create_network:shared`) for attributes the request sets to a non-default."""
        defaults = defaults or {}
        for attr, value in data.items():
            rule = f"{action}:{attr}"
            if rule in self.policy.rules and (attr not in defaults or value != defaults[attr]):
                self.enforce(rule, ctx, target)

    def strip_hidden(self, kind: str, ctx: RequestContext, body: dict[str, Any], target: dict[str, Any],
                     attrs: tuple[str, ...], memo: dict[Any, bool] | None = None) -> dict[str, Any]:
        for attr in attrs:
            if not self.allowed(f"get_{kind}:{attr}", ctx, target, memo):
                body.pop(attr, None)
        return body

    def owner_project(self, ctx: RequestContext, data: dict[str, Any]) -> str:
        project = data.pop("project_id", None)
        tenant = data.pop("tenant_id", None)
        if project and tenant and project != tenant:
            raise BadRequest("'project_id' and 'tenant_id' do not match.", error_type="InvalidInput")
        chosen = project or tenant or ctx.project_id
        if not chosen:
            raise BadRequest("A project_id is required to create this resource.", error_type="InvalidInput")
        return chosen

    def check_quota(self, session: Session, project_id: str, resource: str, wanted: int = 1) -> None:
        """409 OverQuota unless `wanted` more fit (synchronous: async callers use `session.run_sync`)."""
        limit = self.quota_limit(session, project_id, resource)
        if limit < 0:
            return
        model = QUOTA_RESOURCES[resource]
        used = session.scalar(select(func.count()).select_from(model).where(model.project_id == project_id))
        if (used or 0) + wanted > limit:
            raise Conflict(f"Quota exceeded for resources: ['{resource}'].", error_type="OverQuota")

    def quota_limit(self, session: Session, project_id: str, resource: str) -> int:
        row = session.get(m.Quota, (project_id, resource))
        return row.hard_limit if row is not None else self.default_quota(resource)

    def default_quota(self, resource: str) -> int:
        return getattr(self.conf, f"quota_{resource}")

    # ----- networks -----------------------------------------------------------------------------------------
    def network_target(self, net: m.Network) -> dict[str, Any]:
        return {"project_id": net.project_id, "network:project_id": net.project_id, "shared": net.shared,
                "router:external": net.external}

    def visible_network(self, session: Session, ctx: RequestContext, network_id: str) -> m.Network:
        """The network if the caller may see it, else 404 (synchronous: async callers use `session.run_sync`)."""
        net = session.get(m.Network, network_id, options=m.NETWORK_LOAD)
        if net is None or not self.allowed("get_network", ctx, self.network_target(net)):
            raise not_found("network", network_id)
        return net

    def network_view(self, ctx: RequestContext, net: m.Network, memo: dict[Any, bool] | None = None
                     ) -> dict[str, Any]:
        body = {
            "id": net.id, "name": net.name, **standard(net), "admin_state_up": net.admin_state_up,
            "status": net.status, "shared": net.shared, "router:external": net.external, "mtu": net.mtu,
            "port_security_enabled": net.port_security_enabled, "provider:network_type": net.network_type,
            "provider:physical_network": net.physical_network, "provider:segmentation_id": net.segmentation_id,
            "subnets": [s.id for s in net.subnets], "availability_zone_hints": net.availability_zone_hints,
            "availability_zones": [], "ipv4_address_scope": None, "ipv6_address_scope": None,
            "l2_adjacency": True,
        }
        return self.strip_hidden("network", ctx, body, self.network_target(net),
                                 ("provider:network_type", "provider:physical_network",
                                  "provider:segmentation_id"), memo)

    async def list_networks(self, ctx: RequestContext) -> list[dict[str, Any]]:
        async def _read(session: AsyncSession) -> Any:
            rows = await session.scalars(select(m.Network).order_by(m.Network.created_at, m.Network.id))
            memo: dict[Any, bool] = {}
            return [self.network_view(ctx, n, memo) for n in rows
                    if self.allowed("get_network", ctx, self.network_target(n), memo)]

        return await self.db.run(_read, write=False)

    async def get_network(self, ctx: RequestContext, network_id: str) -> dict[str, Any]:
        return await self.db.run(lambda session: self.network_view(ctx, self.visible_network(session, ctx, network_id)),
                                 write=False)  # one hop: compute reads the network of every boot

    async def _segment(self, session: AsyncSession, data: dict[str, Any]) -> tuple[str, str | None, int | None]:
        """Validate or allocate the provider segment (type, physical network, segmentation id)."""
        net_type = data.get("provider:network_type") or self.conf.tenant_network_type
        physnet = data.get("provider:physical_network")
        seg_id = data.get("provider:segmentation_id")
        if net_type in ("local", "vxlan") and physnet:
            raise ipam.invalid(f"provider:physical_network is not allowed for {net_type} networks.")
        if net_type in ("flat", "vlan") and not physnet:
            raise ipam.invalid(f"provider:physical_network is required for {net_type} networks.")
        if net_type in ("local", "flat") and seg_id is not None:
            raise ipam.invalid(f"provider:segmentation_id is not allowed for {net_type} networks.")
        if net_type in SEGMENT_RANGES:
            low, high = SEGMENT_RANGES[net_type]
            if seg_id is not None and not low <= seg_id <= high:
                raise ipam.invalid(f"provider:segmentation_id {seg_id} is out of range {low}-{high} "
                                   f"for {net_type} networks.")
            if seg_id is None:
                prefix = f"{net_type}:{physnet or ''}:"
                used = {int(k.rsplit(":", 1)[1]) for k in await session.scalars(
                    select(m.Network.segment_key).where(m.Network.segment_key.like(prefix + "%")))}
                free = [i for i in range(low, min(high, low + len(used) + ipam.SPREAD) + 1) if i not in used]
                if not free:
                    raise Conflict(f"Unable to create the network: no {net_type} segment is available.",
                                   error_type="NoNetworkAvailable")
                seg_id = random.choice(free[:ipam.SPREAD])
        key = None if net_type == "local" else f"{net_type}:{physnet or ''}:{seg_id if seg_id is not None else ''}"
        if key is not None and await session.scalar(select(m.Network.id).where(m.Network.segment_key == key)):
            what = f"physical network {physnet}" if net_type == "flat" else f"{net_type} segment {seg_id}"
            raise Conflict(f"Unable to create the network: {what} is in use.", error_type=SEGMENT_IN_USE[net_type])
        return net_type, physnet, seg_id

    def _mtu(self, net_type: str, requested: int | None) -> int:
        maximum = self.conf.default_mtu - OVERLAY_OVERHEAD.get(net_type, 0)
        if requested is None:
            return maximum
        if requested > maximum:
            raise ipam.invalid(f"Requested MTU is too big, maximum is {maximum}")
        if requested < 68:
            raise ipam.invalid("Requested MTU is too small, minimum is 68")
        return requested

    async def create_network(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        project_id = self.owner_project(ctx, data)
        target = {"project_id": project_id, "network:project_id": project_id}
        self.enforce("create_network", ctx, target)
        self.enforce_attrs("create_network", ctx, data, target, {"shared": False, "router:external": False})

        async def create(session: AsyncSession) -> dict[str, Any]:
            await session.run_sync(self.check_quota, project_id, "network")
            net_type, physnet, seg_id = await self._segment(session, data)
            net = m.Network(
                id=new_id(), project_id=project_id, name=data.get("name", ""),
                description=data.get("description", ""), admin_state_up=data.get("admin_state_up", True),
                shared=data.get("shared", False), external=data.get("router:external", False),
                mtu=self._mtu(net_type, data.get("mtu")),
                port_security_enabled=data.get("port_security_enabled", True), network_type=net_type,
                physical_network=physnet, segmentation_id=seg_id,
                segment_key=None if net_type == "local" else f"{net_type}:{physnet or ''}:"
                                                             f"{seg_id if seg_id is not None else ''}",
                availability_zone_hints=data.get("availability_zone_hints", []), subnets=[])
            stamp(net, created=True)
            session.add(net)
            await session.flush()
            return self.network_view(ctx, net)

        return await self.write(create)

    async def update_network(self, ctx: RequestContext, network_id: str, data: dict[str, Any]) -> dict[str, Any]:
        async def update(session: AsyncSession) -> dict[str, Any]:
            net = await session.run_sync(self.visible_network, ctx, network_id)
            target = self.network_target(net)
            self.enforce("update_network", ctx, target)
            self.enforce_attrs("update_network", ctx, data, target)
            if any(k.startswith("provider:") for k in data):
                raise BadRequest("Updating the provider attributes of a network is not supported.",
                                 error_type="InvalidInput")
            if data.get("shared") is False and net.shared:
                foreign = await session.scalar(select(m.Port.id).where(
                    m.Port.network_id == net.id, m.Port.project_id != net.project_id,
                    m.Port.project_id != "").limit(1))
                if foreign:
                    raise Conflict(f"Unable to reconfigure sharing settings for network {net.id}. Multiple "
                                   "tenants are using it.", error_type="InvalidSharedSetting")
            if "mtu" in data:
                net.mtu = self._mtu(net.network_type, data["mtu"])
            for attr, column in (("name", "name"), ("description", "description"),
                                 ("admin_state_up", "admin_state_up"), ("shared", "shared"),
                                 ("router:external", "external"), ("port_security_enabled",
                                                                   "port_security_enabled"),
                                 ("availability_zone_hints", "availability_zone_hints")):
                if attr in data:
                    setattr(net, column, data[attr])
            stamp(net)
            await session.flush()
            return self.network_view(ctx, net)

        return await self.write(update)

    async def delete_network(self, ctx: RequestContext, network_id: str) -> None:
        async def delete(session: AsyncSession) -> None:
            net = await session.run_sync(self.visible_network, ctx, network_id)
            self.enforce("delete_network", ctx, self.network_target(net))
            # the floating IPs of an external network go with it (their ports too), as Neutron's L3 plugin does
            for fip in list(await session.scalars(select(m.FloatingIP).where(
                    m.FloatingIP.floating_network_id == net.id))):
                await session.delete(fip)
            await session.flush()
            ports = list(await session.scalars(select(m.Port).where(m.Port.network_id == net.id)))
            if any(p.device_owner not in ("network:dhcp", "network:floatingip") for p in ports):
                raise Conflict(f"Unable to complete operation on network {net.id}. There are one or more ports "
                               "still in use on the network.", error_type="NetworkInUse")
            for port in ports:
                await session.delete(port)
            await session.flush()
            for subnet in list(net.subnets):
                await session.delete(subnet)
            await session.flush()
            await session.delete(net)

        await self.write(delete)

    # ----- subnets ------------------------------------------------------------------------------------------
    def subnet_target(self, subnet: m.Subnet, net: m.Network) -> dict[str, Any]:
        return {**self.network_target(net), "project_id": subnet.project_id}

    async def visible_subnet(self, session: AsyncSession, ctx: RequestContext, subnet_id: str
                             ) -> tuple[m.Subnet, m.Network]:
        subnet = await session.get(m.Subnet, subnet_id)
        net = await session.get(m.Network, subnet.network_id) if subnet is not None else None
        if subnet is None or net is None or not self.allowed("get_subnet", ctx, self.subnet_target(subnet, net)):
            raise not_found("subnet", subnet_id)
        return subnet, net

    def subnet_view(self, subnet: m.Subnet) -> dict[str, Any]:
        return {
            "id": subnet.id, "name": subnet.name, **standard(subnet), "network_id": subnet.network_id,
            "ip_version": subnet.ip_version, "cidr": subnet.cidr, "gateway_ip": subnet.gateway_ip,
            "allocation_pools": subnet.allocation_pools, "dns_nameservers": subnet.dns_nameservers,
            "host_routes": subnet.host_routes, "enable_dhcp": subnet.enable_dhcp,
            "ipv6_ra_mode": subnet.ipv6_ra_mode, "ipv6_address_mode": subnet.ipv6_address_mode,
            "subnetpool_id": subnet.subnetpool_id, "service_types": [], "segment_id": None,
            "dns_publish_fixed_ip": False,
        }

    async def list_subnets(self, ctx: RequestContext) -> list[dict[str, Any]]:
        async def _read(session: AsyncSession) -> Any:
            nets = {n.id: n for n in await session.scalars(select(m.Network))}
            rows = await session.scalars(select(m.Subnet).order_by(m.Subnet.created_at, m.Subnet.id))
            memo: dict[Any, bool] = {}
            return [self.subnet_view(s) for s in rows
                    if self.allowed("get_subnet", ctx, self.subnet_target(s, nets[s.network_id]), memo)]

        return await self.db.run(_read, write=False)

    async def get_subnet(self, ctx: RequestContext, subnet_id: str) -> dict[str, Any]:
        async def _read(session: AsyncSession) -> Any:
            subnet, _ = await self.visible_subnet(session, ctx, subnet_id)
            return self.subnet_view(subnet)

        return await self.db.run(_read, write=False)

    @staticmethod
    def _dns(net: ipam.IPNetwork, servers: list[str]) -> list[str]:
        out = [str(ipam.parse_ip(s, "nameserver")) for s in servers]
        if len(set(out)) != len(out):
            raise ipam.invalid(f"Duplicate nameserver in {servers}")
        return out

    @staticmethod
    def _host_routes(net: ipam.IPNetwork, routes: list[dict[str, str]]) -> list[dict[str, str]]:
        out = []
        for route in routes:
            try:
                dest = ipaddress.ip_network(route["destination"])
            except ValueError:
                raise ipam.invalid(f"'{route['destination']}' is not a valid route destination")
            hop = ipam.parse_ip(route["nexthop"], "nexthop")
            if dest.version != net.version or hop.version != net.version:
                raise ipam.invalid(f"Host route {route} does not match the IP version of subnet {net}.")
            out.append({"destination": str(dest), "nexthop": str(hop)})
        if len({(r["destination"], r["nexthop"]) for r in out}) != len(out):
            raise ipam.invalid(f"Duplicate host route in {routes}")
        return out

    def _subnet_geometry(self, net_cidr: ipam.IPNetwork, data: dict[str, Any]) -> dict[str, Any]:
        """The columns a subnet's CIDR and the request decide: gateway, pools, DNS, routes, IPv6 modes."""
        version = net_cidr.version
        if version == 4 and (data.get("ipv6_ra_mode") or data.get("ipv6_address_mode")):
            raise ipam.invalid("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to "
                               "False or for an IPv4 subnet.")
        mode = data.get("ipv6_address_mode")
        if mode in ("slaac", "dhcpv6-stateless") and net_cidr.prefixlen != 64:
            raise ipam.invalid(f"Invalid CIDR {net_cidr} for IPv6 address mode. OpenStack uses the EUI-64 "
                               "address format, which requires the prefix to be /64")
        ra_mode = data.get("ipv6_ra_mode")
        if ra_mode and mode and ra_mode != mode:
            raise ipam.invalid(f"ipv6_ra_mode set to '{ra_mode}' with ipv6_address_mode set to '{mode}' is not "
                               "valid. If both attributes are set, they must be the same value")
        gateway = data.get("gateway_ip", ipam.default_gateway(net_cidr))
        if gateway is not None:
            gateway = ipam.check_gateway(net_cidr, gateway)
        pools = (ipam.check_pools(net_cidr, data["allocation_pools"], gateway) if data.get("allocation_pools")
                 else ipam.default_pools(net_cidr, gateway))
        return {"ip_version": version, "cidr": str(net_cidr), "gateway_ip": gateway, "allocation_pools": pools,
                "dns_nameservers": self._dns(net_cidr, data.get("dns_nameservers") or []),
                "host_routes": self._host_routes(net_cidr, data.get("host_routes") or []),
                "ipv6_ra_mode": ra_mode, "ipv6_address_mode": mode}

    async def create_subnet(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        """A subnet of the CIDR given, or one allocated from `subnetpool_id` (`prefixlen`, or a CIDR in it)."""
        project_id = self.owner_project(ctx, data)
        pool_id = data.get("subnetpool_id")
        if not data.get("cidr") and not pool_id:
            raise BadRequest("Bad subnets request: a cidr must be specified in the absence of a subnet pool.",
                             error_type="BadRequest")
        if data.get("prefixlen") is not None and not pool_id:
            raise ipam.invalid("prefixlen is only for subnets allocated from a subnet pool.")
        geometry = None if pool_id else self._subnet_geometry(ipam.parse_cidr(data["cidr"], data.get("ip_version")),
                                                               data)

        async def create(session: AsyncSession) -> dict[str, Any]:
            net = await session.run_sync(self.visible_network, ctx, data["network_id"])
            self.enforce("create_subnet", ctx, {**self.network_target(net), "project_id": project_id})
            shape = geometry
            if shape is None:
                cidr, _ = await session.run_sync(ipam.allocate_from_pool, self.allowed, ctx, pool_id, project_id,
                                                 data.get("cidr"), data.get("prefixlen"), data.get("ip_version"))
                shape = self._subnet_geometry(ipaddress.ip_network(cidr), data)
            net_cidr = ipaddress.ip_network(shape["cidr"])
            clash = ipam.overlapping(net_cidr, [s.cidr for s in net.subnets])
            if clash:
                raise ipam.invalid(f"Requested subnet with cidr: {net_cidr} for network: {net.id} overlaps with "
                                   f"another subnet ({clash}).")
            await session.run_sync(self.check_quota, project_id, "subnet")
            subnet = m.Subnet(
                id=new_id(), network_id=net.id, project_id=project_id, name=data.get("name", ""),
                description=data.get("description", ""), enable_dhcp=data.get("enable_dhcp", True),
                subnetpool_id=pool_id, **shape)
            stamp(subnet, created=True)
            session.add(subnet)
            stamp(net)
            await session.flush()
            if ipam.is_slaac(subnet):  # ports already on the network get their autoconfigured address now
                ports = await session.scalars(select(m.Port).where(
                    m.Port.network_id == net.id, m.Port.device_owner != "network:router_interface"))
                for port in ports:
                    session.add(m.IPAllocation(subnet_id=subnet.id, network_id=net.id, port_id=port.id,
                                               ip_address=ipam.eui64_address(subnet, port.mac_address),
                                               position=len(port.fixed_ips)))
                await session.flush()
            return self.subnet_view(subnet)

        return await self.write(create)

    async def update_subnet(self, ctx: RequestContext, subnet_id: str, data: dict[str, Any]) -> dict[str, Any]:
        async def update(session: AsyncSession) -> dict[str, Any]:
            subnet, net = await self.visible_subnet(session, ctx, subnet_id)
            self.enforce("update_subnet", ctx, self.subnet_target(subnet, net))
            net_cidr = ipaddress.ip_network(subnet.cidr)
            gateway = subnet.gateway_ip
            if "gateway_ip" in data:
                gateway = data["gateway_ip"] and ipam.check_gateway(net_cidr, data["gateway_ip"])
                if gateway and gateway != subnet.gateway_ip and await session.get(
                        m.IPAllocation, (subnet.id, gateway)):
                    raise Conflict(f"Gateway ip {gateway} is in use by a port.", error_type="GatewayIpInUse")
            pools = subnet.allocation_pools
            if data.get("allocation_pools") is not None:
                pools = ipam.check_pools(net_cidr, data["allocation_pools"], gateway)
            elif gateway and "gateway_ip" in data:
                ipam.check_pools(net_cidr, pools, gateway)
            subnet.gateway_ip, subnet.allocation_pools = gateway, pools
            if data.get("dns_nameservers") is not None:
                subnet.dns_nameservers = self._dns(net_cidr, data["dns_nameservers"])
            if data.get("host_routes") is not None:
                subnet.host_routes = self._host_routes(net_cidr, data["host_routes"])
            for attr in ("name", "description", "enable_dhcp"):
                if attr in data:
                    setattr(subnet, attr, data[attr])
            stamp(subnet)
            await session.flush()
            return self.subnet_view(subnet)

        return await self.write(update)

    async def delete_subnet(self, ctx: RequestContext, subnet_id: str) -> None:
        async def delete(session: AsyncSession) -> None:
            subnet, net = await self.visible_subnet(session, ctx, subnet_id)
            self.enforce("delete_subnet", ctx, self.subnet_target(subnet, net))
            in_use = await session.scalar(
                select(m.IPAllocation.ip_address).join(m.Port, m.Port.id == m.IPAllocation.port_id).where(
                    m.IPAllocation.subnet_id == subnet.id, m.Port.device_owner != "network:dhcp").limit(1))
            if in_use:
                raise Conflict(f"Unable to complete operation on subnet {subnet.id}: One or more ports have an IP "
                               "allocation from this subnet.", error_type="SubnetInUse")
            allocations = await session.scalars(select(m.IPAllocation).where(
                m.IPAllocation.subnet_id == subnet.id))
            for allocation in allocations:
                await session.delete(allocation)
            await session.delete(subnet)
            stamp(net)

        await self.write(delete)

    # ----- quotas -------------------------------------------------------------------------------------------
    async def get_quota(self, ctx: RequestContext, project_id: str, *, detail: bool = False,
                        default: bool = False) -> dict[str, Any]:
        if project_id != ctx.project_id:  # as Neutron: a project reads its own quotas unchecked
            self.enforce("get_quota", ctx, {"project_id": project_id})
        async def _read(session: AsyncSession) -> Any:
            out: dict[str, Any] = {}
            for resource, model in QUOTA_RESOURCES.items():
                limit = (self.default_quota(resource) if default
                         else await session.run_sync(self.quota_limit, project_id, resource))
                if detail:
                    used = await session.scalar(select(func.count()).select_from(model).where(
                        model.project_id == project_id))
                    out[resource] = {"limit": limit, "used": used or 0, "reserved": 0}
                else:
                    out[resource] = limit
            return out

        return await self.db.run(_read, write=False)

    async def list_quotas(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """Every project's quotas (get_quota: admins and project managers); a manager sees its own project's."""
        self.enforce("get_quota", ctx, {})
        async def _read(session: AsyncSession) -> Any:
            projects = sorted(set(await session.scalars(select(m.Quota.project_id))))
            if not ctx.is_admin:
                projects = [p for p in projects if p == ctx.project_id]
            result = []
            for project_id in projects:
                limits = {r: await session.run_sync(self.quota_limit, project_id, r) for r in QUOTA_RESOURCES}
                result.append({**limits, "project_id": project_id, "tenant_id": project_id})
            return result

        return await self.db.run(_read, write=False)

    async def update_quota(self, ctx: RequestContext, project_id: str, data: dict[str, Any]) -> dict[str, Any]:
        self.enforce("update_quota", ctx, {"project_id": project_id})
        data = dict(data)
        check_limit = data.pop("check_limit", False)
        if not isinstance(check_limit, bool):
            raise ipam.invalid(f"'{check_limit}' is not a valid boolean value for check_limit")
        for resource, value in data.items():
            if resource not in QUOTA_RESOURCES:
                raise BadRequest(f"Unrecognized attribute(s) '{resource}'", error_type="HTTPBadRequest")
            if isinstance(value, bool) or not isinstance(value, int) or value < -1:
                raise ipam.invalid(f"'{value}' is not a valid quota limit for {resource}: an integer >= -1 is "
                                   "required")

        async def update(session: AsyncSession) -> None:
            for resource, value in data.items():
                if check_limit and value >= 0:  # quota-check-limit: never below what is in use
                    model = QUOTA_RESOURCES[resource]
                    used = await session.scalar(select(func.count()).select_from(model).where(
                        model.project_id == project_id)) or 0
                    if value < used:
                        raise BadRequest(f"Quota limit {value} for {resource} must be greater than or equal to "
                                         f"already used and reserved {used}.", error_type="InvalidQuotaValue")
                row = await session.get(m.Quota, (project_id, resource))
                if row is None:
                    session.add(m.Quota(project_id=project_id, resource=resource, hard_limit=value))
                else:
                    row.hard_limit = value

        await self.write(update)
        return await self.get_quota(ctx, project_id)

    async def delete_quota(self, ctx: RequestContext, project_id: str) -> None:
        self.enforce("delete_quota", ctx, {"project_id": project_id})

        async def delete(session: AsyncSession) -> None:
            for row in await session.scalars(select(m.Quota).where(m.Quota.project_id == project_id)):
                await session.delete(row)

        await self.write(delete)

    # ----- IP availability ----------------------------------------------------------------------------------
    async def ip_availabilities(self, ctx: RequestContext, network_id: str | None = None
                                ) -> list[dict[str, Any]]:
        if not self.allowed("get_network_ip_availability", ctx, {}):
            # as Neutron: a list leaves out what policy hides, a show answers that it does not exist
            if network_id is None:
                return []
            raise NotFound(f"Network {network_id} could not be found.", error_type="NetworkNotFound")
        async def _read(session: AsyncSession) -> Any:
            query = select(m.Network).order_by(m.Network.created_at, m.Network.id)
            if network_id is not None:
                query = query.where(m.Network.id == network_id)
            counts = dict((await session.execute(select(m.IPAllocation.subnet_id, func.count()).group_by(
                m.IPAllocation.subnet_id))).all())
            result = []
            for net in await session.scalars(query):
                subnets = [{"subnet_id": s.id, "subnet_name": s.name, "cidr": s.cidr, "ip_version": s.ip_version,
                            "total_ips": ipam.pool_size(s), "used_ips": counts.get(s.id, 0)} for s in net.subnets]
                result.append({"network_id": net.id, "network_name": net.name, "project_id": net.project_id,
                               "tenant_id": net.project_id, "subnet_ip_availability": subnets,
                               "total_ips": sum(s["total_ips"] for s in subnets),
                               "used_ips": sum(s["used_ips"] for s in subnets)})
            if network_id is not None and not result:
                raise not_found("network", network_id)
            return result

        return await self.db.run(_read, write=False)
