"""Security groups and their rules, with the per-project `default` group created on first use."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Conflict
from pocketstack.network import ipam
from pocketstack.network import models as m
from pocketstack.network.manager import Core, new_id, not_found, stamp, standard

PROTOCOLS = {"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58, "igmp": 2,
             "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
             "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17,
             "udplite": 136, "vrrp": 112}
PORT_PROTOCOLS = {"tcp", "udp", "udplite", "sctp", "dccp", "6", "17", "136", "132", "33"}
ICMP_PROTOCOLS = {"icmp", "icmpv6", "ipv6-icmp", "1", "58"}


class SecurityGroups(Core):
    def sg_view(self, sg: m.SecurityGroup, default_ids: set[str] | None = None) -> dict[str, Any]:
        return {"id": sg.id, "name": sg.name, **standard(sg), "stateful": sg.stateful, "shared": False,
                "security_group_rules": [self.rule_view(r, default_ids) for r in sg.rules]}

    def rule_view(self, rule: m.SecurityGroupRule, default_ids: set[str] | None = None) -> dict[str, Any]:
        return {"id": rule.id, **standard(rule), "security_group_id": rule.security_group_id,
                "direction": rule.direction, "ethertype": rule.ethertype, "protocol": rule.protocol,
                "port_range_min": rule.port_range_min, "port_range_max": rule.port_range_max,
                "remote_ip_prefix": rule.remote_ip_prefix, "normalized_cidr": _normalized(rule.remote_ip_prefix),
                "remote_group_id": rule.remote_group_id, "remote_address_group_id": None,
                "belongs_to_default_sg": rule.security_group_id in (default_ids or set())}

    async def default_ids(self, session: AsyncSession) -> set[str]:
        return set(await session.scalars(select(m.DefaultSecurityGroup.security_group_id)))

    async def ensure_default_sg(self, project_id: str) -> None:
        """Create the project's `default` group with Neutron's standard rules unless it exists."""
        if not project_id:
            return
        if await self.db.run(lambda session: session.get(m.DefaultSecurityGroup, project_id), write=False):
            return
        try:
            await self.write_sync(lambda session: self.default_sg_id(session, project_id))
        except Conflict:  # every retry lost to a concurrent creator: the group exists now
            pass

    def default_sg_id(self, session: Session, project_id: str) -> str:
        """The project's `default` group, created in the caller's transaction when missing (a concurrent creator
        makes the transaction fail with an IntegrityError on the project's key, and `write` retries it)."""
        row = session.get(m.DefaultSecurityGroup, project_id)
        if row is not None:
            return row.security_group_id
        sg = m.SecurityGroup(id=new_id(), project_id=project_id, name="default",
                             description="Default security group", stateful=True, rules=[])
        stamp(sg, created=True)
        session.add(sg)
        session.flush()
        session.add(m.DefaultSecurityGroup(project_id=project_id, security_group_id=sg.id))
        for ethertype in ("IPv4", "IPv6"):
            for direction, remote in (("egress", None), ("ingress", sg.id)):
                rule = m.SecurityGroupRule(id=new_id(), security_group_id=sg.id, project_id=project_id,
                                           direction=direction, ethertype=ethertype, remote_group_id=remote,
                                           description="")
                stamp(rule, created=True)
                session.add(rule)
        session.flush()
        return sg.id

    async def visible_sg(self, session: AsyncSession, ctx: RequestContext, sg_id: str) -> m.SecurityGroup:
        sg = await session.get(m.SecurityGroup, sg_id)
        if sg is None or not self.allowed("get_security_group", ctx, {"project_id": sg.project_id}):
            raise not_found("security_group", sg_id)
        return sg

    async def list_security_groups(self, ctx: RequestContext) -> list[dict[str, Any]]:
        return await self._visible_rows(ctx, m.SecurityGroup, "get_security_group", self.sg_view)

    async def _visible_rows(self, ctx: RequestContext, model: Any, action: str,
                            view: Callable[[Any, Any], dict[str, Any]]) -> list[dict[str, Any]]:
        """Every group (or rule) `ctx` may `action`, oldest first; the caller's default group made first."""
        await self.ensure_default_sg(ctx.project_id or "")

        async def _read(session: AsyncSession) -> Any:
            defaults = await self.default_ids(session)
            rows = await session.scalars(select(model).order_by(model.created_at, model.id))
            return [view(row, defaults) for row in rows if self.allowed(action, ctx, {"project_id": row.project_id})]

        return await self.db.run(_read, write=False)

    async def get_security_group(self, ctx: RequestContext, sg_id: str) -> dict[str, Any]:
        async def _read(session: AsyncSession) -> Any:
            return self.sg_view(await self.visible_sg(session, ctx, sg_id), await self.default_ids(session))

        return await self.db.run(_read, write=False)

    async def create_security_group(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        project_id = self.owner_project(ctx, data)
        self.enforce("create_security_group", ctx, {"project_id": project_id})
        if data.get("name") == "default":
            raise Conflict("Default security group already exists.", error_type="SecurityGroupDefaultAlreadyExists")
        await self.ensure_default_sg(project_id)

        async def create(session: AsyncSession) -> dict[str, Any]:
            await session.run_sync(self.check_quota, project_id, "security_group")
            sg = m.SecurityGroup(id=new_id(), project_id=project_id, name=data.get("name", ""),
                                 description=data.get("description", ""), stateful=data.get("stateful", True),
                                 rules=[])
            stamp(sg, created=True)
            session.add(sg)
            await session.flush()
            for ethertype in ("IPv4", "IPv6"):
                rule = m.SecurityGroupRule(id=new_id(), security_group_id=sg.id, project_id=project_id,
                                           direction="egress", ethertype=ethertype, description="")
                stamp(rule, created=True)
                sg.rules.append(rule)
            await session.flush()
            return self.sg_view(sg)

        return await self.write(create)

    async def update_security_group(self, ctx: RequestContext, sg_id: str, data: dict[str, Any]
                                    ) -> dict[str, Any]:
        async def update(session: AsyncSession) -> dict[str, Any]:
            sg = await self.visible_sg(session, ctx, sg_id)
            self.enforce("update_security_group", ctx, {"project_id": sg.project_id})
            defaults = await self.default_ids(session)
            if "name" in data and data["name"] != sg.name and (sg.id in defaults or data["name"] == "default"):
                raise Conflict("Cannot update a default security group's name, nor name another one 'default'.",
                               error_type="SecurityGroupCannotUpdateDefault")
            if "stateful" in data and data["stateful"] != sg.stateful and await session.scalar(
                    select(m.PortSecurityGroup.port_id).where(m.PortSecurityGroup.security_group_id == sg.id)):
                raise Conflict(f"Security Group {sg.id} in use.", error_type="SecurityGroupInUse")
            for attr in ("name", "description", "stateful"):
                if attr in data:
                    setattr(sg, attr, data[attr])
            stamp(sg)
            await session.flush()
            return self.sg_view(sg, defaults)

        return await self.write(update)

    async def delete_security_group(self, ctx: RequestContext, sg_id: str) -> None:
        async def delete(session: AsyncSession) -> None:
            sg = await self.visible_sg(session, ctx, sg_id)
            self.enforce("delete_security_group", ctx, {"project_id": sg.project_id})
            if sg.id in await self.default_ids(session) and not ctx.is_admin:
                raise Conflict("Removing default security group not allowed.",
                               error_type="SecurityGroupCannotRemoveDefault")
            if await session.scalar(select(m.PortSecurityGroup.port_id).where(
                    m.PortSecurityGroup.security_group_id == sg.id).limit(1)):
                raise Conflict(f"Security Group {sg.id} in use.", error_type="SecurityGroupInUse")
            remote_users = await session.scalars(select(m.SecurityGroupRule).where(
                m.SecurityGroupRule.remote_group_id == sg.id, m.SecurityGroupRule.security_group_id != sg.id))
            for rule in remote_users:
                await session.delete(rule)
            default = await session.scalar(select(m.DefaultSecurityGroup).where(
                m.DefaultSecurityGroup.security_group_id == sg.id))
            if default is not None:
                await session.delete(default)
            await session.delete(sg)

        await self.write(delete)

    # ----- rules --------------------------------------------------------------------------------------------
    async def list_security_group_rules(self, ctx: RequestContext) -> list[dict[str, Any]]:
        return await self._visible_rows(ctx, m.SecurityGroupRule, "get_security_group_rule", self.rule_view)

    async def get_security_group_rule(self, ctx: RequestContext, rule_id: str) -> dict[str, Any]:
        async def _read(session: AsyncSession) -> Any:
            rule = await session.get(m.SecurityGroupRule, rule_id)
            if rule is None or not self.allowed("get_security_group_rule", ctx, {"project_id": rule.project_id}):
                raise not_found("security_group_rule", rule_id)
            return self.rule_view(rule, await self.default_ids(session))

        return await self.db.run(_read, write=False)

    @staticmethod
    def _check_rule(data: dict[str, Any]) -> dict[str, Any]:
        """Normalise and validate a rule's protocol, port range, ethertype and remote (400 on bad input)."""
        ethertype = data.get("ethertype", "IPv4")
        protocol = data.get("protocol")
        if protocol is not None:
            protocol = str(protocol).lower()
            if protocol.isdigit():
                if not 0 <= int(protocol) <= 255:
                    raise BadRequest(f"Security group rule protocol {protocol} not supported. Only protocol values "
                                     f"{sorted(PROTOCOLS)} and integer representations [0 to 255] are supported.",
                                     error_type="SecurityGroupRuleInvalidProtocol")
            elif protocol not in PROTOCOLS and protocol != "any":
                raise BadRequest(f"Security group rule protocol {protocol} not supported. Only protocol values "
                                 f"{sorted(PROTOCOLS)} and integer representations [0 to 255] are supported.",
                                 error_type="SecurityGroupRuleInvalidProtocol")
            if protocol == "any":
                protocol = None
        low, high = data.get("port_range_min"), data.get("port_range_max")
        for value in (low, high):
            if value is not None and not 0 <= value <= 65535:
                raise BadRequest(f"Invalid value for port {value}", error_type="SecurityGroupInvalidPortValue")
        if (low is not None or high is not None) and protocol is None:
            raise BadRequest("Must also specify protocol if port range is given.",
                             error_type="SecurityGroupProtocolRequiredWithPorts")
        if protocol in PORT_PROTOCOLS and (low is not None or high is not None):
            if low == 0 or high == 0:
                raise BadRequest("Invalid value for port 0", error_type="SecurityGroupInvalidPortValue")
            if low is None or high is None or low > high:  # both ends, in order, as Neutron requires
                raise BadRequest("For TCP/UDP protocols, port_range_min must be <= port_range_max",
                                 error_type="SecurityGroupInvalidPortRange")
        elif protocol in ICMP_PROTOCOLS:
            for value, what in ((low, "type"), (high, "code")):
                if value is not None and not 0 <= value <= 255:
                    raise BadRequest(f"Invalid value for ICMP {what} (port_range_min/max): {value}.",
                                     error_type="SecurityGroupInvalidIcmpValue")
            if high is not None and low is None:
                raise BadRequest("ICMP code (port-range-max) is provided but ICMP type (port-range-min) is "
                                 "missing.", error_type="SecurityGroupMissingIcmpType")
        elif low is not None or high is not None:
            raise BadRequest(f"Port ranges are not supported for protocol {protocol}.",
                             error_type="SecurityGroupInvalidProtocolForPort")
        prefix = data.get("remote_ip_prefix")
        if prefix is not None:
            if data.get("remote_group_id"):
                raise BadRequest("Only one of remote_ip_prefix and remote_group_id may be given.",
                                 error_type="SecurityGroupRemoteGroupAndRemoteIpPrefix")
            try:
                net = ipaddress.ip_network(prefix, strict=False)
            except ValueError:
                raise ipam.invalid(f"'{prefix}' is not a valid IP prefix")
            if f"IPv{net.version}" != ethertype:
                raise BadRequest(f"Conflicting value ethertype {ethertype} for CIDR {prefix}",
                                 error_type="SecurityGroupRuleParameterConflict")
            prefix = str(ipaddress.ip_interface(prefix)) if "/" in prefix else str(net)
        return {"direction": data["direction"], "ethertype": ethertype, "protocol": protocol,
                "port_range_min": low, "port_range_max": high, "remote_ip_prefix": prefix,
                "remote_group_id": data.get("remote_group_id"), "description": data.get("description", "")}

    async def create_security_group_rule(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        rule_data = self._check_rule(data)
        owner = self.owner_project(ctx, data)

        async def create(session: AsyncSession) -> dict[str, Any]:
            sg = await self.visible_sg(session, ctx, data["security_group_id"])
            project_id = sg.project_id if not ctx.is_admin or owner == ctx.project_id else owner
            self.enforce("create_security_group_rule", ctx, {"project_id": sg.project_id})
            if rule_data["remote_group_id"]:
                await self.visible_sg(session, ctx, rule_data["remote_group_id"])
            for existing in sg.rules:
                if all(getattr(existing, k) == v for k, v in rule_data.items() if k != "description"):
                    raise Conflict(f"Security group rule already exists. Rule id is {existing.id}.",
                                   error_type="SecurityGroupRuleExists")
            await session.run_sync(self.check_quota, project_id, "security_group_rule")
            rule = m.SecurityGroupRule(id=new_id(), security_group_id=sg.id, project_id=project_id, **rule_data)
            stamp(rule, created=True)
            session.add(rule)
            stamp(sg)
            await session.flush()
            return self.rule_view(rule, await self.default_ids(session))

        return await self.write(create)

    async def delete_security_group_rule(self, ctx: RequestContext, rule_id: str) -> None:
        async def delete(session: AsyncSession) -> None:
            rule = await session.get(m.SecurityGroupRule, rule_id)
            if rule is None or not self.allowed("get_security_group_rule", ctx, {"project_id": rule.project_id}):
                raise not_found("security_group_rule", rule_id)
            self.enforce("delete_security_group_rule", ctx, {"project_id": rule.project_id})
            await session.delete(rule)

        await self.write(delete)

    def port_security_groups(self, session: Session, ctx: RequestContext, project_id: str,
                             sg_ids: list[str] | None) -> list[str]:
        """The groups a port gets: the requested ones (same project as the port) or the project's default
        (created now if the project has none yet)."""
        if sg_ids is None:
            return [self.default_sg_id(session, project_id)] if project_id else []
        wanted = list(dict.fromkeys(sg_ids))
        owners = dict(session.execute(select(m.SecurityGroup.id, m.SecurityGroup.project_id).where(
            m.SecurityGroup.id.in_(wanted))).tuples().all()) if wanted else {}
        for sg_id in wanted:
            if owners.get(sg_id) != project_id:
                raise not_found("security_group", sg_id)
        return wanted


def _normalized(prefix: str | None) -> str | None:
    return str(ipaddress.ip_network(prefix, strict=False)) if prefix else None

