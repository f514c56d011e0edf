"""Regions, services and endpoints: the service catalog."""

from __future__ import annotations

from typing import Literal

from fastapi import Request, Response
from pydantic import Field
from sqlalchemy import delete, select

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, Conflict
from pocketstack.identity import models as m
from pocketstack.identity.api.common import (
    Open,
    Strict,
    collection,
    endpoint_body,
    enforce,
    manager,
    parse_bool,
    region_body,
    service_body,
)
from pocketstack.identity.api.resources import _get, _wrapped
from pocketstack.identity.service import new_id


class RegionCreate(Strict):
    id: str | None = Field(None, min_length=1, max_length=255)
    description: str = ""
    parent_region_id: str | None = None


class RegionUpdate(Strict):
    description: str | None = None
    parent_region_id: str | None = None


async def create_region(request: Request) -> Response:
    enforce(request, "identity:create_region")
    data = RegionCreate.model_validate(_wrapped(await json_body(request), "region"))
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        region_id = data.id or new_id()
        if await session.get(m.Region, region_id) is not None:
            raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {region_id}.")
        if data.parent_region_id and await session.get(m.Region, data.parent_region_id) is None:
            raise BadRequest(f"Invalid input: parent region {data.parent_region_id} does not exist.")
        region = m.Region(id=region_id, description=data.description, parent_region_id=data.parent_region_id)
        session.add(region)
    mgr.invalidate()
    return json_response({"region": region_body(request, region)}, status=201)


async def list_regions(request: Request, parent_region_id: str | None = None) -> Response:
    enforce(request, "identity:list_regions")
    query = select(m.Region).order_by(m.Region.id)
    if parent_region_id is not None:
        query = query.where(m.Region.parent_region_id == parent_region_id)
    async with manager(request).db.session(write=False) as session:
        rows = (await session.scalars(query)).all()
    return collection(request, "regions", [region_body(request, r) for r in rows])


async def get_region(request: Request, region_id: str) -> Response:
    enforce(request, "identity:get_region")
    async with manager(request).db.session(write=False) as session:
        region = await _get(session, m.Region, region_id, "region")
    return json_response({"region": region_body(request, region)})


async def update_region(request: Request, region_id: str) -> Response:
    enforce(request, "identity:update_region")
    data = RegionUpdate.model_validate(_wrapped(await json_body(request), "region"))
    async with manager(request).db.session(write=True) as session:
        region = await _get(session, m.Region, region_id, "region")
        if data.description is not None:
            region.description = data.description
        if "parent_region_id" in data.model_fields_set:
            if data.parent_region_id == region_id:
                raise BadRequest("Invalid input: a region cannot be its own parent.")
            region.parent_region_id = data.parent_region_id
    return json_response({"region": region_body(request, region)})


async def delete_region(request: Request, region_id: str) -> Response:
    enforce(request, "identity:delete_region")
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        region = await _get(session, m.Region, region_id, "region")
        if await session.scalar(select(m.Endpoint.id).where(m.Endpoint.region_id == region_id).limit(1)):
            raise Conflict(f"Region {region_id} still has endpoints.")
        await session.delete(region)
    mgr.invalidate()
    return Response(status_code=204)


class ServiceCreate(Open):
    type: str = Field(min_length=1, max_length=255)
    name: str = ""
    description: str = ""
    enabled: bool = True


class ServiceUpdate(Open):
    type: str | None = Field(None, min_length=1, max_length=255)
    name: str | None = None
    description: str | None = None
    enabled: bool | None = None


async def create_service(request: Request) -> Response:
    enforce(request, "identity:create_service")
    data = ServiceCreate.model_validate(_wrapped(await json_body(request), "service"))
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        service = m.CatalogService(id=new_id(), type=data.type, name=data.name, description=data.description,
                                   enabled=data.enabled)
        session.add(service)
    mgr.invalidate()
    return json_response({"service": service_body(request, service)}, status=201)


async def list_services(request: Request, type: str | None = None, name: str | None = None) -> Response:
    enforce(request, "identity:list_services")
    query = select(m.CatalogService).order_by(m.CatalogService.type)
    if type is not None:
        query = query.where(m.CatalogService.type == type)
    if name is not None:
        query = query.where(m.CatalogService.name == name)
    async with manager(request).db.session(write=False) as session:
        rows = (await session.scalars(query)).all()
    return collection(request, "services", [service_body(request, s) for s in rows])


async def get_service(request: Request, service_id: str) -> Response:
    enforce(request, "identity:get_service")
    async with manager(request).db.session(write=False) as session:
        service = await _get(session, m.CatalogService, service_id, "service")
    return json_response({"service": service_body(request, service)})


async def update_service(request: Request, service_id: str) -> Response:
    enforce(request, "identity:update_service")
    data = ServiceUpdate.model_validate(_wrapped(await json_body(request), "service"))
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        service = await _get(session, m.CatalogService, service_id, "service")
        for attr in ("type", "name", "description", "enabled"):
            if (value := getattr(data, attr)) is not None:
                setattr(service, attr, value)
    mgr.invalidate()
    return json_response({"service": service_body(request, service)})


async def delete_service(request: Request, service_id: str) -> Response:
    enforce(request, "identity:delete_service")
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        service = await _get(session, m.CatalogService, service_id, "service")
        await session.execute(delete(m.Endpoint).where(m.Endpoint.service_id == service_id))
        await session.delete(service)
    mgr.invalidate()
    return Response(status_code=204)


Interface = Literal["public", "internal", "admin"]


class EndpointCreate(Strict):
    service_id: str
    interface: Interface
    url: str = Field(min_length=1, pattern=r"^https?://")
    region_id: str | None = None
    region: str | None = None
    enabled: bool = True


class EndpointUpdate(Strict):
    service_id: str | None = None
    interface: Interface | None = None
    url: str | None = Field(None, min_length=1, pattern=r"^https?://")
    region_id: str | None = None
    region: str | None = None
    enabled: bool | None = None


async def create_endpoint(request: Request) -> Response:
    enforce(request, "identity:create_endpoint")
    data = EndpointCreate.model_validate(_wrapped(await json_body(request), "endpoint"))
    region_id = data.region_id or data.region
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        if await session.get(m.CatalogService, data.service_id) is None:
            raise BadRequest(f"Invalid input: service {data.service_id} does not exist.")
        if region_id and await session.get(m.Region, region_id) is None:
            session.add(m.Region(id=region_id, description=""))  # Keystone creates the region implicitly
        endpoint = m.Endpoint(id=new_id(), service_id=data.service_id, interface=data.interface, url=data.url,
                              region_id=region_id, enabled=data.enabled)
        session.add(endpoint)
    mgr.invalidate()
    return json_response({"endpoint": endpoint_body(request, endpoint)}, status=201)


async def list_endpoints(request: Request, service_id: str | None = None, interface: str | None = None,
                         region_id: str | None = None, enabled: str | None = None) -> Response:
    enforce(request, "identity:list_endpoints")
    query = select(m.Endpoint)
    if service_id is not None:
        query = query.where(m.Endpoint.service_id == service_id)
    if interface is not None:
        query = query.where(m.Endpoint.interface == interface)
    if region_id is not None:
        query = query.where(m.Endpoint.region_id == region_id)
    if (flag := parse_bool(enabled)) is not None:
        query = query.where(m.Endpoint.enabled.is_(flag))
    async with manager(request).db.session(write=False) as session:
        rows = (await session.scalars(query)).all()
    return collection(request, "endpoints", [endpoint_body(request, e) for e in rows])


async def get_endpoint(request: Request, endpoint_id: str) -> Response:
    enforce(request, "identity:get_endpoint")
    async with manager(request).db.session(write=False) as session:
        endpoint = await _get(session, m.Endpoint, endpoint_id, "endpoint")
    return json_response({"endpoint": endpoint_body(request, endpoint)})


async def update_endpoint(request: Request, endpoint_id: str) -> Response:
    enforce(request, "identity:update_endpoint")
    data = EndpointUpdate.model_validate(_wrapped(await json_body(request), "endpoint"))
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        endpoint = await _get(session, m.Endpoint, endpoint_id, "endpoint")
        if data.service_id is not None:
            if await session.get(m.CatalogService, data.service_id) is None:
                raise BadRequest(f"Invalid input: service {data.service_id} does not exist.")
            endpoint.service_id = data.service_id
        for attr in ("interface", "url", "enabled"):
            if (value := getattr(data, attr)) is not None:
                setattr(endpoint, attr, value)
        region_id = data.region_id or data.region
        if region_id:
            if await session.get(m.Region, region_id) is None:
                raise BadRequest(f"Invalid input: region {region_id} does not exist.")
            endpoint.region_id = region_id
    mgr.invalidate()
    return json_response({"endpoint": endpoint_body(request, endpoint)})


async def delete_endpoint(request: Request, endpoint_id: str) -> Response:
    enforce(request, "identity:delete_endpoint")
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        endpoint = await _get(session, m.Endpoint, endpoint_id, "endpoint")
        await session.delete(endpoint)
    mgr.invalidate()
    return Response(status_code=204)
