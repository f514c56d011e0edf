"""Routers and floating IPs (`/v2.0/routers`, `/v2.0/floatingips`)."""

from __future__ import annotations

from fastapi import Request, Response
from pydantic import ValidationError

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest
from pocketstack.network.api.common import Body, Resource, context, describe, manager
from pocketstack.network.api.core import FixedIP, Name, Owned, Route

COMMON = {"id", "description", "project_id", "tenant_id", "created_at", "updated_at", "revision_number", "tags"}
ROUTER_ATTRS = COMMON | {"name", "admin_state_up", "status", "external_gateway_info", "routes",
                         "availability_zones", "availability_zone_hints"}
FIP_ATTRS = COMMON | {"floating_ip_address", "floating_network_id", "router_id", "port_id", "fixed_ip_address",
                      "status"}


class GatewayInfo(Body):
    network_id: str | None = None
    enable_snat: bool = True
    external_fixed_ips: list[FixedIP] = []


class RouterUpdate(Body):
    name: str = Name
    description: str = Name
    admin_state_up: bool = True
    external_gateway_info: GatewayInfo | None = None
    routes: list[Route] | None = []  # null clears them, as Neutron reads it


class RouterCreate(RouterUpdate, Owned):
    pass


class Interface(Body):
    subnet_id: str | None = None
    port_id: str | None = None


class FloatingIPUpdate(Body):
    port_id: str | None = None
    fixed_ip_address: str | None = None
    description: str = Name


class FloatingIPCreate(FloatingIPUpdate, Owned):
    floating_network_id: str
    floating_ip_address: str | None = None
    subnet_id: str | None = None


ROUTERS = Resource(
    "/v2.0/routers", kind="router", collection="routers", attributes=ROUTER_ATTRS, create=RouterCreate,
    update=RouterUpdate)
FLOATING_IPS = Resource(
    "/v2.0/floatingips", kind="floatingip", collection="floatingips", attributes=FIP_ATTRS, create=FloatingIPCreate,
    update=FloatingIPUpdate)


async def _interface(request: Request) -> dict[str, str | None]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be an object with subnet_id or port_id.")
    try:
        return Interface.model_validate(body).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise BadRequest(describe(exc))


async def add_interface(request: Request, router_id: str) -> Response:
    data = await _interface(request)
    return json_response(await manager(request).add_router_interface(context(request), router_id, data))


async def remove_interface(request: Request, router_id: str) -> Response:
    data = await _interface(request)
    return json_response(await manager(request).remove_router_interface(context(request), router_id, data))
