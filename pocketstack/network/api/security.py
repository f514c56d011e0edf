"""Security groups and rules (`/v2.0/security-groups`, `/v2.0/security-group-rules`)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import Field

from pocketstack.network.api.common import Body, context, listing, manager, parse, shown
from pocketstack.network.api.core import Name, Owned

router = APIRouter(prefix="/v2.0")

COMMON = {"id", "description", "project_id", "tenant_id", "created_at", "updated_at", "revision_number", "tags"}
GROUP_ATTRS = COMMON | {"name", "stateful", "shared", "security_group_rules"}
RULE_ATTRS = COMMON | {"security_group_id", "direction", "ethertype", "protocol", "port_range_min",
                       "port_range_max", "remote_ip_prefix", "normalized_cidr", "remote_group_id",
                       "remote_address_group_id", "belongs_to_default_sg"}


class GroupUpdate(Body):
    name: str = Name
    description: str = Name
    stateful: bool = True


class GroupCreate(GroupUpdate, Owned):
    pass


class RuleCreate(Owned):
    security_group_id: str
    direction: Literal["ingress", "egress"]
    ethertype: Literal["IPv4", "IPv6"] = "IPv4"
    protocol: str | int | None = None
    port_range_min: int | None = Field(None, ge=0, le=65535)
    port_range_max: int | None = Field(None, ge=0, le=65535)
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None
    remote_address_group_id: None = None
    description: str = Name


@router.get("/security-groups")
async def list_groups(request: Request) -> Response:
    items = await manager(request).list_security_groups(context(request))
    return listing(request, "security_groups", items, GROUP_ATTRS)


@router.post("/security-groups")
async def create_group(request: Request) -> Response:
    data = await parse(request, "security_group", GroupCreate)
    return shown(request, "security_group", await manager(request).create_security_group(context(request), data),
                 201)


@router.get("/security-groups/{sg_id}")
async def show_group(request: Request, sg_id: str) -> Response:
    return shown(request, "security_group", await manager(request).get_security_group(context(request), sg_id))


@router.put("/security-groups/{sg_id}")
async def update_group(request: Request, sg_id: str) -> Response:
    data = await parse(request, "security_group", GroupUpdate)
    return shown(request, "security_group",
                 await manager(request).update_security_group(context(request), sg_id, data))


@router.delete("/security-groups/{sg_id}", status_code=204)
async def delete_group(request: Request, sg_id: str) -> Response:
    await manager(request).delete_security_group(context(request), sg_id)
    return Response(status_code=204)


@router.get("/security-group-rules")
async def list_rules(request: Request) -> Response:
    items = await manager(request).list_security_group_rules(context(request))
    return listing(request, "security_group_rules", items, RULE_ATTRS)


@router.post("/security-group-rules")
async def create_rule(request: Request) -> Response:
    data = await parse(request, "security_group_rule", RuleCreate)
    return shown(request, "security_group_rule",
                 await manager(request).create_security_group_rule(context(request), data), 201)


@router.get("/security-group-rules/{rule_id}")
async def show_rule(request: Request, rule_id: str) -> Response:
    return shown(request, "security_group_rule",
                 await manager(request).get_security_group_rule(context(request), rule_id))


@router.delete("/security-group-rules/{rule_id}", status_code=204)
async def delete_rule(request: Request, rule_id: str) -> Response:
    await manager(request).delete_security_group_rule(context(request), rule_id)
    return Response(status_code=204)
