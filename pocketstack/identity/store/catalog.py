"""The service catalog: regions, services and endpoints, and the catalog a token carries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict
from pocketstack.identity import models as m
from pocketstack.identity.store.common import fetch_all, get_or_404, only


async def create_region(db: Database, region_id: str, description: str, parent_region_id: str | None,
                        extra: dict[str, Any] | None = None) -> m.Region:
    async def write(session: AsyncSession) -> m.Region:
        if await session.get(m.Region, region_id) is not None:
            raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {region_id}.")
        if parent_region_id and await session.get(m.Region, parent_region_id) is None:
            raise BadRequest(f"Invalid input: parent region {parent_region_id} does not exist.")
        region = m.Region(id=region_id, description=description, parent_region_id=parent_region_id,
                          extra=extra or {})
        session.add(region)
        return region
    return await db.run(write, write=True)


async def list_regions(db: Database, parent_region_id: str | None) -> list[m.Region]:
    return await fetch_all(db, only(select(m.Region).order_by(m.Region.id), parent_region_id=parent_region_id))


async def update_region(db: Database, region_id: str, description: str | None,
                        parent: tuple[bool, str | None], extra: dict[str, Any] | None = None) -> m.Region:
    """`parent`: (whether the request sets parent_region_id, the value it sets)."""
    async def write(session: AsyncSession) -> m.Region:
        region = await get_or_404(session, m.Region, region_id, "region")
        if description is not None:
            region.description = description
        if parent[0]:
            if parent[1] == region_id:
                raise BadRequest("Invalid input: a region cannot be its own parent.")
            region.parent_region_id = parent[1]
        if extra:
            region.extra = {**(region.extra or {}), **extra}
        return region
    return await db.run(write, write=True)


async def delete_region(db: Database, region_id: str) -> None:
    async def write(session: AsyncSession) -> None:
        region = await get_or_404(session, m.Region, region_id, "region")
        if await session.scalar(select(m.Endpoint.id).where(m.Endpoint.region_id == region_id).limit(1)):
            raise Conflict(f"Region {region_id} still has endpoints.")
        await session.delete(region)
    await db.run(write, write=True)


async def create_service(db: Database, fields: dict[str, Any]) -> m.CatalogService:
    async def write(session: AsyncSession) -> m.CatalogService:
        service = m.CatalogService(**fields)
        session.add(service)
        return service
    return await db.run(write, write=True)


async def list_services(db: Database, type: str | None, name: str | None) -> list[m.CatalogService]:
    return await fetch_all(db, only(select(m.CatalogService).order_by(m.CatalogService.type), type=type, name=name))


async def update_service(db: Database, service_id: str, changes: dict[str, Any]) -> m.CatalogService:
    async def write(session: AsyncSession) -> m.CatalogService:
        service = await get_or_404(session, m.CatalogService, service_id, "service")
        for attr, value in changes.items():
            setattr(service, attr, value)
        return service
    return await db.run(write, write=True)


async def delete_service(db: Database, service_id: str) -> None:
    """A service and its endpoints."""
    async def write(session: AsyncSession) -> None:
        service = await get_or_404(session, m.CatalogService, service_id, "service")
        await session.execute(delete(m.Endpoint).where(m.Endpoint.service_id == service_id))
        await session.delete(service)
    await db.run(write, write=True)


async def _check_service(session: AsyncSession, service_id: str) -> None:
    if await session.get(m.CatalogService, service_id) is None:
        raise BadRequest(f"Invalid input: service {service_id} does not exist.")


async def _ensure_region(session: AsyncSession, region_id: str) -> None:
    """A region an endpoint names that does not exist yet is created with it, as Keystone does."""
    if await session.get(m.Region, region_id) is None:
        session.add(m.Region(id=region_id, description="", extra={}))
        await session.flush()  # the region row before the endpoint that refers to it


async def create_endpoint(db: Database, fields: dict[str, Any]) -> m.Endpoint:
    """An endpoint, with its region made if it does not exist yet."""
    async def write(session: AsyncSession) -> m.Endpoint:
        endpoint = m.Endpoint(**fields)
        await _check_service(session, endpoint.service_id)
        if endpoint.region_id:
            await _ensure_region(session, endpoint.region_id)
        session.add(endpoint)
        return endpoint
    return await db.run(write, write=True)


async def list_endpoints(db: Database, service_id: str | None, interface: str | None, region_id: str | None,
                         enabled: bool | None) -> list[m.Endpoint]:
    query = only(select(m.Endpoint), service_id=service_id, interface=interface, region_id=region_id)
    if enabled is not None:
        query = query.where(m.Endpoint.enabled.is_(enabled))
    return await fetch_all(db, query)


async def update_endpoint(db: Database, endpoint_id: str, service_id: str | None, region_id: str | None,
                          changes: dict[str, Any]) -> m.Endpoint:
    async def write(session: AsyncSession) -> m.Endpoint:
        endpoint = await get_or_404(session, m.Endpoint, endpoint_id, "endpoint")
        if service_id is not None:
            await _check_service(session, service_id)
            endpoint.service_id = service_id
        for attr, value in changes.items():
            setattr(endpoint, attr, value)
        if region_id:
            await _ensure_region(session, region_id)
            endpoint.region_id = region_id
        return endpoint
    return await db.run(write, write=True)


async def delete_endpoint(db: Database, endpoint_id: str) -> None:
    async def write(session: AsyncSession) -> None:
        await session.delete(await get_or_404(session, m.Endpoint, endpoint_id, "endpoint"))
    await db.run(write, write=True)


async def token_catalog(session: AsyncSession, project_id: str | None) -> list[dict[str, Any]]:
    """The catalog of a token scoped to `project_id` (None: domain scope, so endpoints naming the project are left
    out): enabled services and endpoints, with the project substituted into endpoint URLs."""
    services = (await session.scalars(select(m.CatalogService).where(m.CatalogService.enabled.is_(True)))).all()
    endpoints = (await session.scalars(select(m.Endpoint).where(m.Endpoint.enabled.is_(True)))).all()
    if project_id is not None:
        endpoints = await _filtered_for_project(session, project_id, list(endpoints))
    by_service: dict[str, list[dict[str, Any]]] = {}
    for ep in endpoints:
        url = ep.url
        if "$(" in url or "%(" in url:
            if project_id is None:
                continue
            for var in ("$(project_id)s", "$(tenant_id)s", "%(project_id)s", "%(tenant_id)s"):
                url = url.replace(var, project_id)
        by_service.setdefault(ep.service_id, []).append(
            {"id": ep.id, "interface": ep.interface, "region_id": ep.region_id, "region": ep.region_id,
             "url": url})
    return [{"id": s.id, "type": s.type, "name": s.name, "endpoints": by_service.get(s.id, [])}
            for s in sorted(services, key=lambda s: s.type)]


async def _filtered_for_project(session: AsyncSession, project_id: str, endpoints: list[m.Endpoint]
                                ) -> list[m.Endpoint]:
    """OS-EP-FILTER: a project with endpoints or endpoint groups associated sees only those endpoints."""
    assocs = (await session.scalars(select(m.Record).where(
        m.Record.owner == project_id, m.Record.kind.in_(("project_endpoint", "project_endpoint_group"))))).all()
    if not assocs:
        return endpoints
    allowed = {a.data["endpoint_id"] for a in assocs if a.kind == "project_endpoint"}
    for assoc in assocs:
        if assoc.kind == "project_endpoint_group":
            group = await session.get(m.Record, ("endpoint_group", assoc.data["endpoint_group_id"]))
            filters = (group.data.get("filters") or {}) if group is not None else None
            if filters:
                allowed |= {e.id for e in endpoints
                            if all(getattr(e, key, None) == value for key, value in filters.items())}
    return [e for e in endpoints if e.id in allowed]


async def catalog_for(db: Database, project_id: str | None) -> list[dict[str, Any]]:
    """`GET /v3/auth/catalog`."""
    async def read(session: AsyncSession) -> list[dict[str, Any]]:
        return await token_catalog(session, project_id)
    return await db.run(read, write=False)
