"""Regions, services and endpoints: the service catalog."""

from __future__ import annotations

from typing import Literal

from fastapi import Request, Response
from pydantic import Field, StrictBool

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest
from pocketstack.identity.api.common import (
    Open,
    Strict,
    collection,
    endpoint_body,
    enforce,
    extra_of,
    manager,
    parse_bool,
    region_body,
    service_body,
    wrapped,
)
from pocketstack.identity.service import new_id
from pocketstack.identity.store import catalog as store
from pocketstack.identity.store.common import CatalogService, Endpoint, Region, fetch


class RegionCreate(Open):
    id: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = ""
    parent_region_id: str | None = None


class RegionUpdate(Open):
    description: str | None = None
    parent_region_id: str | None = None


async def create_region(request: Request) -> Response:
    enforce(request, "identity:create_region")
    data = RegionCreate.model_validate(wrapped(await json_body(request), "region"))
    mgr = manager(request)
    region = await store.create_region(mgr.db, data.id or new_id(), data.description or "", data.parent_region_id,
                                       extra_of(data))
    mgr.invalidate()
    return json_response({"region": region_body(request, region)}, status=201)


async def put_region(request: Request, region_id: str) -> Response:
    """`PUT /v3/regions/{region_id}`: create a region with the id of the URL."""
    data = RegionCreate.model_validate(wrapped(await json_body(request), "region"))
    if data.id is not None and data.id != region_id:
        raise BadRequest("Invalid input: the region's 'id' differs from the one in the URL.")
    enforce(request, "identity:create_region")
    mgr = manager(request)
    region = await store.create_region(mgr.db, region_id, data.description or "", data.parent_region_id,
                                       extra_of(data))
    mgr.invalidate()
    return json_response({"region": region_body(request, region)}, status=201)


async def list_regions(request: Request, parent_region_id: str | None = None) -> Response:
    enforce(request, "identity:list_regions")
    rows = await store.list_regions(manager(request).db, parent_region_id)
    return collection(request, "regions", [region_body(request, r) for r in rows])


async def get_region(request: Request, region_id: str) -> Response:
    enforce(request, "identity:get_region")
    region = await fetch(manager(request).db, Region, region_id, "region")
    return json_response({"region": region_body(request, region)})


async def update_region(request: Request, region_id: str) -> Response:
    enforce(request, "identity:update_region")
    data = RegionUpdate.model_validate(wrapped(await json_body(request), "region"))
    region = await store.update_region(manager(request).db, region_id, data.description,
                                       ("parent_region_id" in data.model_fields_set, data.parent_region_id),
                                       extra_of(data))
    return json_response({"region": region_body(request, region)})


async def delete_region(request: Request, region_id: str) -> Response:
    enforce(request, "identity:delete_region")
    mgr = manager(request)
    await store.delete_region(mgr.db, region_id)
    mgr.invalidate()
    return Response(status_code=204)


class ServiceCreate(Open):
    type: str = Field(min_length=1, max_length=255)
    name: str = Field("", max_length=255)
    description: str | None = ""
    enabled: StrictBool = True


class ServiceUpdate(Open):
    type: str | None = Field(None, min_length=1, max_length=255)
    name: str | None = Field(None, max_length=255)
    description: str | None = None
    enabled: StrictBool | None = None


async def create_service(request: Request) -> Response:
    enforce(request, "identity:create_service")
    data = ServiceCreate.model_validate(wrapped(await json_body(request), "service"))
    mgr = manager(request)
    service = await store.create_service(mgr.db, {"id": new_id(), "type": data.type, "name": data.name,
                                                  "description": data.description or "", "enabled": data.enabled})
    mgr.invalidate()
    return json_response({"service": service_body(request, service)}, status=201)


async def list_services(request: Request, type: str | None = None, name: str | None = None) -> Response:
    enforce(request, "identity:list_services")
    rows = await store.list_services(manager(request).db, type, name)
    return collection(request, "services", [service_body(request, s) for s in rows])


async def get_service(request: Request, service_id: str) -> Response:
    enforce(request, "identity:get_service")
    service = await fetch(manager(request).db, CatalogService, service_id, "service")
    return json_response({"service": service_body(request, service)})


async def update_service(request: Request, service_id: str) -> Response:
    enforce(request, "identity:update_service")
    data = ServiceUpdate.model_validate(wrapped(await json_body(request), "service"))
    mgr = manager(request)
    changes = {attr: value for attr in ("type", "name", "description", "enabled")
               if (value := getattr(data, attr)) is not None}
    service = await store.update_service(mgr.db, service_id, changes)
    mgr.invalidate()
    return json_response({"service": service_body(request, service)})


async def delete_service(request: Request, service_id: str) -> Response:
    enforce(request, "identity:delete_service")
    mgr = manager(request)
    await store.delete_service(mgr.db, service_id)
    mgr.invalidate()
    return Response(status_code=204)


Interface = Literal["public", "internal", "admin"]


class EndpointCreate(Strict):
    service_id: str
    interface: Interface
    url: str = Field(min_length=1, pattern=r"^https?://")
    region_id: str | None = None
    region: str | None = None
    enabled: StrictBool = True


class EndpointUpdate(Strict):
    service_id: str | None = None
    interface: Interface | None = None
    url: str | None = Field(None, min_length=1, pattern=r"^https?://")
    region_id: str | None = None
    region: str | None = None
    enabled: StrictBool | None = None


async def create_endpoint(request: Request) -> Response:
    enforce(request, "identity:create_endpoint")
    data = EndpointCreate.model_validate(wrapped(await json_body(request), "endpoint"))
    mgr = manager(request)
    endpoint = await store.create_endpoint(mgr.db, {
        "id": new_id(), "service_id": data.service_id, "interface": data.interface, "url": data.url,
        "region_id": data.region_id or data.region, "enabled": data.enabled})
    mgr.invalidate()
    return json_response({"endpoint": endpoint_body(request, endpoint)}, status=201)


async def list_endpoints(request: Request, service_id: str | None = None, interface: str | None = None,
                         region_id: str | None = None, enabled: str | None = None) -> Response:
    enforce(request, "identity:list_endpoints")
    rows = await store.list_endpoints(manager(request).db, service_id, interface, region_id, parse_bool(enabled))
    return collection(request, "endpoints", [endpoint_body(request, e) for e in rows])


async def get_endpoint(request: Request, endpoint_id: str) -> Response:
    enforce(request, "identity:get_endpoint")
    endpoint = await fetch(manager(request).db, Endpoint, endpoint_id, "endpoint")
    return json_response({"endpoint": endpoint_body(request, endpoint)})


async def update_endpoint(request: Request, endpoint_id: str) -> Response:
    enforce(request, "identity:update_endpoint")
    data = EndpointUpdate.model_validate(wrapped(await json_body(request), "endpoint"))
    mgr = manager(request)
    changes = {attr: value for attr in ("interface", "url", "enabled") if (value := getattr(data, attr)) is not None}
    endpoint = await store.update_endpoint(mgr.db, endpoint_id, data.service_id, data.region_id or data.region,
                                           changes)
    mgr.invalidate()
    return json_response({"endpoint": endpoint_body(request, endpoint)})


async def delete_endpoint(request: Request, endpoint_id: str) -> Response:
    enforce(request, "identity:delete_endpoint")
    mgr = manager(request)
    await store.delete_endpoint(mgr.db, endpoint_id)
    mgr.invalidate()
    return Response(status_code=204)
