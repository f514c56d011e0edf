"""Routers and floating IPs (`/v2.0/routers`, `/v2.0/floatingips`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest
from pocketstack.network.api.common import Body, context, describe, listing, manager, parse, shown
from pocketstack.network.api.core import FixedIP, Name, Owned, Route

router = APIRouter(prefix="/v2.0")

COMMON = {"id", "description", "project_id", "tenant_id", "created_at", "updated_at", "revision_number", "tags"}
ROUTER_ATTRS = COMMON | {"name", "admin_state_up", "status", "external_gateway_info", "routes",
                         "availability_zones", "availability_zone_hints"}
FIP_ATTRS = COMMON | {"floating_ip_address", "floating_network_id", "router_id", "port_id", "fixed_ip_address",
                      "status", "port_forwardings"}


class GatewayInfo(Body):
    network_id: str | None = None
    enable_snat: bool = True
    external_fixed_ips: list[FixedIP] = []


class RouterUpdate(Body):
    name: str = Name
    description: str = Name
    admin_state_up: bool = True
    external_gateway_info: GatewayInfo | None = None
    routes: list[Route] = []


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


@router.get("/routers")
async def list_routers(request: Request) -> Response:
    return listing(request, "routers", await manager(request).list_routers(context(request)), ROUTER_ATTRS)


@router.post("/routers")
async def create_router(request: Request) -> Response:
    data = await parse(request, "router", RouterCreate)
    return shown(request, "router", await manager(request).create_router(context(request), data), 201)


@router.get("/routers/{router_id}")
async def show_router(request: Request, router_id: str) -> Response:
    return shown(request, "router", await manager(request).get_router(context(request), router_id))


@router.put("/routers/{router_id}")
async def update_router(request: Request, router_id: str) -> Response:
    data = await parse(request, "router", RouterUpdate)
    return shown(request, "router", await manager(request).update_router(context(request), router_id, data))


@router.delete("/routers/{router_id}", status_code=204)
async def delete_router(request: Request, router_id: str) -> Response:
    await manager(request).delete_router(context(request), router_id)
    return Response(status_code=204)


async def _interface(request: Request) -> dict[str, str | None]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be an object with subnet_id or port_id.")
    try:
        return Interface.model_validate(body).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise BadRequest(describe(exc))


@router.put("/routers/{router_id}/add_router_interface")
async def add_interface(request: Request, router_id: str) -> Response:
    data = await _interface(request)
    return json_response(await manager(request).add_router_interface(context(request), router_id, data))


@router.put("/routers/{router_id}/remove_router_interface")
async def remove_interface(request: Request, router_id: str) -> Response:
    data = await _interface(request)
    return json_response(await manager(request).remove_router_interface(context(request), router_id, data))


@router.get("/floatingips")
async def list_floatingips(request: Request) -> Response:
    return listing(request, "floatingips", await manager(request).list_floatingips(context(request)), FIP_ATTRS)


@router.post("/floatingips")
async def create_floatingip(request: Request) -> Response:
    data = await parse(request, "floatingip", FloatingIPCreate)
    return shown(request, "floatingip", await manager(request).create_floatingip(context(request), data), 201)


@router.get("/floatingips/{fip_id}")
async def show_floatingip(request: Request, fip_id: str) -> Response:
    return shown(request, "floatingip", await manager(request).get_floatingip(context(request), fip_id))


@router.put("/floatingips/{fip_id}")
async def update_floatingip(request: Request, fip_id: str) -> Response:
    data = await parse(request, "floatingip", FloatingIPUpdate)
    return shown(request, "floatingip", await manager(request).update_floatingip(context(request), fip_id, data))


@router.delete("/floatingips/{fip_id}", status_code=204)
async def delete_floatingip(request: Request, fip_id: str) -> Response:
    await manager(request).delete_floatingip(context(request), fip_id)
    return Response(status_code=204)
