"""Ports: fixed IPs from IPAM, MAC addresses, security groups, allowed address pairs and host binding.

Binding (FLOW.md steps 23-25): when compute sets `binding:host_id` the port is bound with the configured
mechanism. The Linux bridge mechanism gives `vif_type` "bridge" and the bridge the host agent plugs the tap
into (`brq` + the first 11 characters of the network id, or the mapped bridge of a flat physical network).
The port stays DOWN until the host's agent reports it plugged (`report_port_status`), which marks it ACTIVE
and tells compute `network-vif-plugged`.
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from pocketstack.common.clients.compute_events import DELETED, PLUGGED, UNPLUGGED, ServerEvent
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import APIError, BadRequest, Conflict, Forbidden
from pocketstack.network import ipam
from pocketstack.network import models as m
from pocketstack.network.agent.rpcapi import LINUX_BRIDGE_AGENT
from pocketstack.network.manager import new_id, not_found, stamp, standard
from pocketstack.network.secgroups import SecurityGroups

MAC_RE = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")
L3_OWNERS = ("network:router_interface", "network:router_gateway", "network:floatingip")
MAC_PREFIX = "fa:16:3e"


def random_mac() -> str:
    return MAC_PREFIX + "".join(f":{random.randint(0, 255):02x}" for _ in range(3))


def dhcp_options(current: list[dict[str, Any]], changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neutron's extra_dhcp_opts update: each change sets its (name, IP version) option, a null value removes
    it, options not named stay."""
    options = {(o["opt_name"], o["ip_version"]): o for o in current}
    for change in changes:
        key = (change["opt_name"], change.get("ip_version", 4))
        if change.get("opt_value") is None:
            options.pop(key, None)
        else:
            options[key] = {"opt_name": key[0], "opt_value": change["opt_value"], "ip_version": key[1]}
    return list(options.values())


class Ports(SecurityGroups):
    def port_target(self, project_id: str, net: m.Network, device_owner: str = "") -> dict[str, Any]:
        return {**self.network_target(net), "project_id": project_id,
                "network_device": device_owner.startswith("network:")}

    def port_view(self, ctx: RequestContext, port: m.Port, net: m.Network, memo: dict[Any, bool] | None = None
                  ) -> dict[str, Any]:
        body = {
            "id": port.id, "name": port.name, **standard(port), "network_id": port.network_id,
            "admin_state_up": port.admin_state_up, "mac_address": port.mac_address,
            "fixed_ips": [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips],
            "device_id": port.device_id, "device_owner": port.device_owner, "status": port.status,
            "binding:host_id": port.binding_host_id, "binding:vif_type": port.binding_vif_type,
            "binding:vif_details": port.binding_vif_details, "binding:profile": port.binding_profile,
            "binding:vnic_type": port.binding_vnic_type, "port_security_enabled": port.port_security_enabled,
            "allowed_address_pairs": port.allowed_address_pairs,
            "extra_dhcp_opts": [dict(opt) for opt in port.extra_dhcp_opts or []],
            "security_groups": [b.security_group_id for b in port.security_group_bindings],
            "ip_allocation": "immediate",
        }
        return self.strip_hidden("port", ctx, body, self.port_target(port.project_id, net, port.device_owner),
                                 ("binding:host_id", "binding:vif_type", "binding:vif_details",
                                  "binding:profile"), memo)

    def visible_port(self, session: Session, ctx: RequestContext, port_id: str) -> tuple[m.Port, m.Network]:
        """The port and its network if the caller may see it, else 404 (async callers use `run_sync`)."""
        port = session.get(m.Port, port_id, options=m.PORT_LOAD)
        net = session.get(m.Network, port.network_id, options=m.NETWORK_LOAD) if port is not None else None
        if port is None or net is None or not self.allowed(
                "get_port", ctx, self.port_target(port.project_id, net, port.device_owner)):
            raise not_found("port", port_id)
        return port, net

    async def list_ports(self, ctx: RequestContext, pushdown: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Ports the caller may see; `pushdown` filters plain columns (network_id, device_id, ...) in SQL.

        Lists read plain rows (three queries, no ORM objects): building ORM instances cost most of the time.
        """
        async def _read(session: AsyncSession) -> Any:
            nets = {n.id: n for n in await session.scalars(select(m.Network))}
            conditions = [getattr(m.Port, column).in_(values) for column, values in pushdown.items()]
            rows = (await session.execute(select(*m.Port.__table__.c).where(*conditions).order_by(
                m.Port.created_at, m.Port.id))).mappings().all()
            fixed_ips: dict[str, list[SimpleNamespace]] = defaultdict(list)
            for port_id, subnet_id, ip in await session.execute(
                    select(m.IPAllocation.port_id, m.IPAllocation.subnet_id, m.IPAllocation.ip_address).join(
                        m.Port, m.Port.id == m.IPAllocation.port_id).where(*conditions).order_by(
                        m.IPAllocation.position)):
                fixed_ips[port_id].append(SimpleNamespace(subnet_id=subnet_id, ip_address=ip))
            groups: dict[str, list[SimpleNamespace]] = defaultdict(list)
            for port_id, sg_id in await session.execute(
                    select(m.PortSecurityGroup.port_id, m.PortSecurityGroup.security_group_id).join(
                        m.Port, m.Port.id == m.PortSecurityGroup.port_id).where(*conditions).order_by(
                        m.PortSecurityGroup.position)):
                groups[port_id].append(SimpleNamespace(security_group_id=sg_id))
            return nets, rows, fixed_ips, groups

        nets, rows, fixed_ips, groups = await self.db.run(_read, write=False)
        out = []
        memo: dict[Any, bool] = {}
        for row in rows:
            net = nets[row["network_id"]]
            if self.allowed("get_port", ctx, self.port_target(row["project_id"], net, row["device_owner"]), memo):
                port = SimpleNamespace(**row, fixed_ips=fixed_ips[row["id"]],
                                       security_group_bindings=groups[row["id"]])
                out.append(self.port_view(ctx, port, net, memo))  # type: ignore[arg-type]
        return out

    async def get_port(self, ctx: RequestContext, port_id: str) -> dict[str, Any]:
        def read(session: Session) -> dict[str, Any]:
            return self.port_view(ctx, *self.visible_port(session, ctx, port_id))

        return await self.db.run(read, write=False)

    # ----- helpers used by create and update ----------------------------------------------------------------
    def bridge_name(self, net: m.Network) -> str | None:
        if net.network_type == "flat":
            return self.conf.bridge_mappings.get(net.physical_network or "")
        return f"{self.conf.bridge_prefix}{net.id[:11]}"

    def bind(self, session: Session, port: m.Port, net: m.Network) -> None:
        """Select the mechanism for the port's host (Linux bridge) and record the result on the port. A flat
        network binds only on hosts whose Linux bridge agent maps its physical network, as Neutron's mechanism
        driver checks (a host without any agent, as with the fake driver, binds by this service's mappings)."""
        if not port.binding_host_id:
            port.binding_vif_type, port.binding_vif_details = "unbound", {}
            return
        bridge = self.bridge_name(net)
        if bridge is not None and net.network_type == "flat":
            agent = session.scalar(select(m.Agent.configurations).where(
                m.Agent.host == port.binding_host_id, m.Agent.agent_type == LINUX_BRIDGE_AGENT))
            if agent is not None and net.physical_network not in (agent.get("bridge_mappings") or {}):
                bridge = None
        if bridge is None:
            port.binding_vif_type, port.binding_vif_details = "binding_failed", {}
            return
        port.binding_vif_type = "bridge"
        port.binding_vif_details = {"connectivity": "l2", "port_filter": True, "bridge_name": bridge}

    @staticmethod
    def _mac(session: Session, net: m.Network, requested: str | None) -> str:
        """A requested MAC (409 if the network has it) or a random one: a rare clash of those fails the insert
        on the (network, MAC) key and the transaction is retried with a new one."""
        if requested is None:
            return random_mac()
        if not MAC_RE.match(requested) or int(requested[:2], 16) & 1:
            raise ipam.invalid(f"'{requested}' is not a valid unicast MAC address")
        mac = requested.lower().replace("-", ":")
        if session.scalar(select(m.Port.id).where(m.Port.network_id == net.id, m.Port.mac_address == mac)):
            raise Conflict(f"Unable to complete operation for network {net.id}. The mac address {mac} is in "
                           "use.", error_type="MacAddressInUse")
        return mac

    def _allocate(self, session: Session, port: m.Port, net: m.Network,
                        requested: list[dict[str, Any]] | None, *, allow_gateway: bool = False) -> None:
        """Give the port its fixed IPs: the requested ones, or one per IP version (all SLAAC subnets).

        The addresses are inserted with the port's next flush; a concurrent winner of one of them shows up as an
        IntegrityError and the caller's transaction is retried.
        """
        subnets = {s.id: s for s in net.subnets}
        position = len(port.fixed_ips)

        def add(subnet: m.Subnet, ip: str) -> None:
            nonlocal position
            port.fixed_ips.append(m.IPAllocation(subnet_id=subnet.id, ip_address=ip, network_id=net.id,
                                                 position=position))
            position += 1

        if requested is None:
            for version in (4, 6):
                candidates = [s for s in subnets.values() if s.ip_version == version and not ipam.is_slaac(s)]
                failure: APIError | None = None
                for subnet in candidates:
                    try:
                        add(subnet, ipam.pick_address(session, subnet))
                        failure = None
                        break
                    except Conflict as exc:
                        failure = exc
                if failure is not None:
                    raise failure
            for subnet in subnets.values():
                if ipam.is_slaac(subnet):
                    add(subnet, ipam.check_requested(
                        session, subnet, ipam.eui64_address(subnet, port.mac_address), allow_gateway=False))
            return
        seen: set[tuple[str, str | None]] = set()
        for item in requested:
            subnet_id, ip = item.get("subnet_id"), item.get("ip_address")
            if subnet_id is None and ip is None:
                raise ipam.invalid("Exactly one of subnet_id or ip_address, or both, is required in fixed_ips")
            if subnet_id is not None and subnet_id not in subnets:
                raise ipam.invalid(f"Failed to create port on network {net.id}, because fixed_ips included "
                                   f"invalid subnet {subnet_id}")
            if subnet_id is None:
                addr = ipam.parse_ip(ip)
                subnet_id = next((s.id for s in subnets.values() if addr in ipaddress.ip_network(s.cidr)), None)
                if subnet_id is None:
                    raise BadRequest(f"IP address {ip} is not a valid IP for any of the subnets on the specified "
                                     "network.", error_type="InvalidIpForNetwork")
            if (subnet_id, ip) in seen:
                raise ipam.invalid(f"Duplicate IP address '{ip}'" if ip else f"Duplicate subnet '{subnet_id}'")
            seen.add((subnet_id, ip))
            subnet = subnets[subnet_id]
            if ip is not None:
                add(subnet, ipam.check_requested(session, subnet, ip, allow_gateway=allow_gateway))
            elif ipam.is_slaac(subnet):
                add(subnet, ipam.check_requested(
                    session, subnet, ipam.eui64_address(subnet, port.mac_address), allow_gateway=False))
            else:
                add(subnet, ipam.pick_address(session, subnet))

    @staticmethod
    def _address_pairs(pairs: list[dict[str, Any]], mac: str) -> list[dict[str, str]]:
        out = []
        for pair in pairs:
            try:
                ip = str(ipaddress.ip_network(pair["ip_address"], strict=False)) if "/" in pair["ip_address"] \
                    else str(ipaddress.ip_address(pair["ip_address"]))
            except ValueError:
                raise ipam.invalid(f"'{pair['ip_address']}' is not a valid IP address or CIDR")
            pair_mac = pair.get("mac_address") or mac
            if not MAC_RE.match(pair_mac):
                raise ipam.invalid(f"'{pair_mac}' is not a valid MAC address")
            out.append({"ip_address": ip, "mac_address": pair_mac.lower()})
        if len({(p["ip_address"], p["mac_address"]) for p in out}) != len(out):
            raise BadRequest("Request contains duplicate address pair.", error_type="DuplicateAddressPairInRequest")
        return out

    def _check_device(self, session: Session, ctx: RequestContext, project_id: str,
                            device_id: str, device_owner: str) -> None:
        """A member may not attach a port to another project's device (routers are checked here)."""
        if ctx.is_admin or not device_id:
            return
        router = session.get(m.Router, device_id)
        if (router is not None and router.project_id != project_id) or (
                router is None and device_owner == "network:router_interface"):
            raise Forbidden(f"The following device_id {device_id} is not owned by your project or matches "
                            "another project's router.", error_type="DeviceIDNotOwnedByTenant")

    def _apply_security(self, port: m.Port, net: m.Network, sg_ids: list[str]) -> None:
        if not port.port_security_enabled and sg_ids:
            raise Conflict("Port has no port security: security groups cannot be applied.",
                           error_type="PortSecurityAndIPRequiredForSecurityGroups")
        if not port.port_security_enabled and port.allowed_address_pairs:
            raise Conflict("Port Security must be enabled in order to have allowed address pairs on a port.",
                           error_type="AddressPairAndPortSecurityRequired")
        if [b.security_group_id for b in port.security_group_bindings] != sg_ids:
            port.security_group_bindings = [m.PortSecurityGroup(port_id=port.id, security_group_id=sg, position=i)
                                            for i, sg in enumerate(sg_ids)]

    def _reallocate(self, session: Session, port: m.Port, net: m.Network,
                          requested: list[dict[str, Any]]) -> None:
        """Replace a port's fixed IPs: requested addresses it already holds (by address, or by subnet when only
        the subnet is named) are kept, the others released, and the rest allocated."""
        unclaimed = list(port.fixed_ips)
        kept: list[m.IPAllocation] = []
        new: list[dict[str, Any]] = []
        for item in requested:
            ip = str(ipam.parse_ip(item["ip_address"])) if item.get("ip_address") else None
            match = next((a for a in unclaimed if (ip is None or a.ip_address == ip)
                          and (item.get("subnet_id") is None or a.subnet_id == item["subnet_id"])
                          and (ip is not None or item.get("subnet_id") is not None)), None)
            if match is None:
                new.append(item)
            else:
                unclaimed.remove(match)
                kept.append(match)
        for allocation in unclaimed:
            port.fixed_ips.remove(allocation)
        session.flush()
        self._allocate(session, port, net, new,
                             allow_gateway=port.device_owner == "network:router_interface")

    # ----- create / update / delete -------------------------------------------------------------------------
    def build_port(self, session: Session, ctx: RequestContext, net: m.Network, project_id: str,
                         data: dict[str, Any], *, allow_gateway: bool = False, internal: bool = False) -> m.Port:
        """Create a port row with its addresses and groups inside the caller's transaction.

        `internal`: a port the service creates for its own devices (router gateway, floating IP). Synchronous:
        async callers use `session.run_sync`. The port, its addresses and its groups go in with one flush.
        """
        owner = data.get("device_owner", "")
        if not internal:
            self._check_device(session, ctx, project_id, data.get("device_id", ""), owner)
        if project_id:
            self.check_quota(session, project_id, "port")
        port = m.Port(
            id=new_id(), network_id=net.id, project_id=project_id, name=data.get("name", ""),
            description=data.get("description", ""), admin_state_up=data.get("admin_state_up", True),
            mac_address=self._mac(session, net, data.get("mac_address")),
            device_id=data.get("device_id", ""), device_owner=owner, status="DOWN",
            binding_host_id=data.get("binding:host_id") or "", binding_profile=data.get("binding:profile") or {},
            binding_vnic_type=data.get("binding:vnic_type", "normal"),
            port_security_enabled=data.get("port_security_enabled", net.port_security_enabled),
            fixed_ips=[], security_group_bindings=[])
        port.allowed_address_pairs = self._address_pairs(data.get("allowed_address_pairs") or [],
                                                         port.mac_address)
        port.extra_dhcp_opts = dhcp_options([], data.get("extra_dhcp_opts") or [])
        stamp(port, created=True)
        self.bind(session, port, net)
        self._allocate(session, port, net, data.get("fixed_ips"), allow_gateway=allow_gateway)
        wanted = data.get("security_groups")
        if wanted is None and (owner.startswith("network:") or not port.port_security_enabled):
            wanted = []
        self._apply_security(port, net, self.port_security_groups(session, ctx, project_id, wanted))
        session.add(port)
        session.flush()
        return port

    def _enforce_port_attrs(self, action: str, ctx: RequestContext, data: dict[str, Any],
                            target: dict[str, Any]) -> None:
        self.enforce_attrs(action, ctx, {k: v for k, v in data.items() if k != "fixed_ips"}, target)
        fixed = data.get("fixed_ips") or []
        if any(item.get("ip_address") for item in fixed):
            self.enforce(f"{action}:fixed_ips:ip_address", ctx, target)
        if any(item.get("subnet_id") for item in fixed):
            self.enforce(f"{action}:fixed_ips:subnet_id", ctx, target)

    async def create_port(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        project_id = self.owner_project(ctx, data)

        def create(session: Session) -> dict[str, Any]:
            net = self.visible_network(session, ctx, data["network_id"])
            target = self.port_target(project_id, net, data.get("device_owner", ""))
            if not (ctx.is_admin or net.shared or net.project_id == project_id == ctx.project_id):
                raise not_found("network", net.id)
            self.enforce("create_port", ctx, target)
            self._enforce_port_attrs("create_port", ctx, data, target)
            if project_id:  # the project's `default` group exists from its first port on, as in Neutron
                self.default_sg_id(session, project_id)
            return self.port_view(ctx, self.build_port(session, ctx, net, project_id, data), net)

        return await self.write_sync(create)

    async def update_port(self, ctx: RequestContext, port_id: str, data: dict[str, Any]) -> dict[str, Any]:
        def update(session: Session) -> dict[str, Any]:
            port, net = self.visible_port(session, ctx, port_id)
            target = self.port_target(port.project_id, net, data.get("device_owner", port.device_owner))
            self.enforce("update_port", ctx, target)
            self._enforce_port_attrs("update_port", ctx, data, target)
            if "device_id" in data or "device_owner" in data:
                self._check_device(session, ctx, port.project_id, data.get("device_id", port.device_id),
                                         data.get("device_owner", port.device_owner))
            if "mac_address" in data and data["mac_address"] != port.mac_address:
                if port.binding_host_id:
                    raise Conflict(f"Unable to complete operation on port {port.id}: the MAC address of a bound "
                                   "port cannot change.", error_type="PortBound")
                port.mac_address = self._mac(session, net, data["mac_address"])
            if data.get("fixed_ips") is not None:
                self._reallocate(session, port, net, data["fixed_ips"])
            for attr, column in (("name", "name"), ("description", "description"),
                                 ("admin_state_up", "admin_state_up"), ("device_id", "device_id"),
                                 ("device_owner", "device_owner"), ("binding:profile", "binding_profile"),
                                 ("binding:vnic_type", "binding_vnic_type"),
                                 ("port_security_enabled", "port_security_enabled")):
                if attr in data:
                    setattr(port, column, data[attr] if data[attr] is not None else {})
            if "allowed_address_pairs" in data:
                port.allowed_address_pairs = self._address_pairs(data["allowed_address_pairs"] or [],
                                                                 port.mac_address)
            if "extra_dhcp_opts" in data:
                port.extra_dhcp_opts = dhcp_options(port.extra_dhcp_opts or [], data["extra_dhcp_opts"] or [])
            if "binding:host_id" in data and (data["binding:host_id"] or "") != port.binding_host_id:
                port.binding_host_id = data["binding:host_id"] or ""
                port.status = "DOWN"  # the new host's agent reports it up once plugged
                self.bind(session, port, net)
            if "security_groups" in data:
                sg_ids = self.port_security_groups(session, ctx, port.project_id, data["security_groups"] or [])
            else:
                sg_ids = [b.security_group_id for b in port.security_group_bindings]
                if sg_ids and not port.port_security_enabled:
                    raise Conflict("Port has security groups: remove them before disabling port security.",
                                   error_type="PortSecurityPortHasSecurityGroup")
            self._apply_security(port, net, sg_ids)
            stamp(port)
            session.flush()
            return self.port_view(ctx, port, net)

        return await self.write_sync(update)

    async def delete_port(self, ctx: RequestContext, port_id: str) -> None:
        def delete(session: Session) -> ServerEvent | None:
            port, net = self.visible_port(session, ctx, port_id)
            self.enforce("delete_port", ctx, self.port_target(port.project_id, net, port.device_owner))
            if port.device_owner in L3_OWNERS:
                raise Conflict(f"Port {port.id} cannot be deleted directly via the port API: has device owner "
                               f"{port.device_owner}.", error_type="L3PortInUse")
            self.disassociate_port_floating_ips(session, port.id)
            event = (ServerEvent(DELETED, port.device_id, port.id)
                     if port.device_owner.startswith("compute:") and port.device_id else None)
            session.delete(port)
            return event

        event = await self.write_sync(delete)
        if event is not None:
            self.notifier.notify([event])

    @staticmethod
    def disassociate_port_floating_ips(session: Session, port_id: str) -> None:
        for fip in session.scalars(select(m.FloatingIP).where(m.FloatingIP.fixed_port_id == port_id)):
            fip.fixed_port_id = fip.fixed_ip_address = fip.router_id = None
            fip.status = "DOWN"
            stamp(fip)
        session.flush()

    async def report_port_status(self, port_id: str, host: str, up: bool) -> ServerEvent | None:
        """A host agent reports a port plugged (ACTIVE) or unplugged (DOWN); compute hears of it.

        Reports from a host the port is not bound to are ignored (a stale agent after a migration).
        Returns the event sent to compute, if any.
        """
        def update(session: Session) -> ServerEvent | None:
            port = session.get(m.Port, port_id, options=m.PORT_LOAD)
            if port is None:
                raise not_found("port", port_id)
            if port.binding_host_id != host:
                return None
            status = "ACTIVE" if up else "DOWN"
            if port.status == status:
                return None
            port.status = status
            stamp(port)
            if port.device_owner.startswith("compute:") and port.device_id:
                return ServerEvent(PLUGGED if up else UNPLUGGED, port.device_id, port.id)
            return None

        event = await self.write_sync(update, notify=False)
        if event is not None:
            self.notifier.notify([event])
        return event
