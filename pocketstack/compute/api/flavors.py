"""`/flavors`: list/detail/show, `os-flavor-manage` (create, update description, delete), `os-extra_specs`
and `os-flavor-access`, with the body fields openstacksdk and the CLI read up to microversion 2.79."""

from __future__ import annotations

import re
import uuid as uuidlib
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.exc import IntegrityError

from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute.api.bodies import display_name, parse, query_bool, wrapped
from pocketstack.compute.api.common import enforce, limit_param, links, next_link, state, version

router = APIRouter(prefix="/v2.1")

FLAVOR_ID_RE = re.compile(r"^(?! )[a-zA-Z0-9. _-]+(?<! )$")
SPEC_KEY_RE = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")
MAX_INT = 2**31 - 1


class FlavorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = Field(min_length=1, max_length=255)
    id: str | int | None = None
    ram: int = Field(ge=1, le=MAX_INT)
    vcpus: int = Field(ge=1, le=MAX_INT)
    disk: int = Field(ge=0, le=MAX_INT)
    ephemeral: int = Field(0, ge=0, le=MAX_INT, alias="OS-FLV-EXT-DATA:ephemeral")
    swap: int | str = 0
    rxtx_factor: float = Field(1.0, gt=0, le=3.40282e38)
    is_public: bool = Field(True, alias="os-flavor-access:is_public")
    description: str | None = Field(None, max_length=65535)

    _name = field_validator("name")(display_name)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | int | None) -> str | None:
        if value is None or value == "auto":
            return None
        value = str(value)
        if len(value) > 255 or not FLAVOR_ID_RE.match(value):
            raise ValueError(f"'{value}' is not a valid flavor id (letters, digits, '.', '_', '-', inner spaces)")
        return value

    @field_validator("swap")
    @classmethod
    def _swap(cls, value: int | str) -> int:
        if value == "":
            return 0
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"'{value}' is not an integer")
        if not 0 <= number <= MAX_INT:
            raise ValueError(f"{number} is out of range")
        return number


class FlavorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(max_length=65535)


# ----- views and lookups -------------------------------------------------------------------------------------
def flavor_view(request: Request, flavor: m.Flavor, extra_specs: dict[str, str] | None,
                detail: bool = True) -> dict[str, Any]:
    ver = version(request)
    body: dict[str, Any] = {"id": flavor.flavorid, "name": flavor.name,
                            "links": links(request, "flavors", flavor.flavorid)}
    if detail:
        body.update({
            "ram": flavor.memory_mb, "vcpus": flavor.vcpus, "disk": flavor.root_gb,
            "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb, "OS-FLV-DISABLED:disabled": flavor.disabled,
            "os-flavor-access:is_public": flavor.is_public, "rxtx_factor": flavor.rxtx_factor,
            # before 2.75 Nova shows a swap of 0 as an empty string
            "swap": flavor.swap if flavor.swap or ver >= "2.75" else "",
        })
    if ver >= "2.55":
        body["description"] = flavor.description
    if detail and ver >= "2.61" and extra_specs is not None:
        body["extra_specs"] = extra_specs
    return body


def _visible(ctx: RequestContext) -> Any:
    """A flavor a non-admin may see: public, or private with the caller's project on its access list."""
    return or_(m.Flavor.is_public.is_(True),
               m.Flavor.id.in_(select(m.FlavorProject.flavor_id).where(m.FlavorProject.project_id == ctx.project_id)))


async def get_flavor(session: Any, flavor_id: str, ctx: RequestContext) -> m.Flavor:
    query = select(m.Flavor).where(m.Flavor.flavorid == flavor_id)
    if not ctx.is_admin:
        query = query.where(_visible(ctx))
    flavor = await session.scalar(query)
    if flavor is None:
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    return flavor


async def _specs(session: Any, flavor_ids: list[int]) -> dict[int, dict[str, str]]:
    result: dict[int, dict[str, str]] = {i: {} for i in flavor_ids}
    if flavor_ids:
        for row in (await session.scalars(select(m.FlavorExtraSpec).where(
                m.FlavorExtraSpec.flavor_id.in_(flavor_ids)))).all():
            result[row.flavor_id][row.key] = row.value
    return result


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters {name}. Value: {raw}. '{raw}' is not an integer")


_SORT_KEYS = {"created_at": m.Flavor.created_at, "description": m.Flavor.description, "disabled": m.Flavor.disabled,
              "ephemeral_gb": m.Flavor.ephemeral_gb, "flavorid": m.Flavor.flavorid, "id": m.Flavor.id,
              "is_public": m.Flavor.is_public, "memory_mb": m.Flavor.memory_mb, "name": m.Flavor.name,
              "root_gb": m.Flavor.root_gb, "rxtx_factor": m.Flavor.rxtx_factor, "swap": m.Flavor.swap,
              "vcpus": m.Flavor.vcpus}


async def _list(request: Request, detail: bool) -> Response:
    ctx = request_context(request)
    q = request.query_params
    query = select(m.Flavor).where(m.Flavor.disabled.is_(False))
    if ctx.is_admin:
        raw = q.get("is_public")
        is_public = None if raw is not None and raw.strip().lower() == "none" else query_bool(request, "is_public")
        if raw is None:
            is_public = True
    else:
        is_public = True  # Nova ignores is_public for non-admins: public plus their own private flavors
    if is_public is True:
        query = query.where(_visible(ctx))
    elif is_public is False:
        query = query.where(m.Flavor.is_public.is_(False))
    min_ram, min_disk = _int_param(request, "minRam"), _int_param(request, "minDisk")
    if min_ram is not None:
        query = query.where(m.Flavor.memory_mb >= min_ram)
    if min_disk is not None:
        query = query.where(m.Flavor.root_gb >= min_disk)
    sort_key, sort_dir = q.get("sort_key", "flavorid"), q.get("sort_dir", "asc")
    if sort_key not in _SORT_KEYS:
        raise BadRequest(f"Invalid input for query parameters sort_key. Value: {sort_key}. "
                         f"'{sort_key}' is not one of {sorted(_SORT_KEYS)}")
    if sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid input for query parameters sort_dir. Value: {sort_dir}. "
                         f"'{sort_dir}' is not one of ['asc', 'desc']")
    column = _SORT_KEYS[sort_key]
    limit = limit_param(request)
    async with state(request).db.session(write=False) as session:
        if q.get("marker"):
            marker = await session.scalar(select(m.Flavor).where(m.Flavor.flavorid == q["marker"]))
            if marker is None:
                raise BadRequest(f"marker [{q['marker']}] not found")
            value = getattr(marker, column.key)
            after = column > value if sort_dir == "asc" else column < value
            query = query.where(or_(after, and_(column == value, m.Flavor.id > marker.id)))
        query = query.order_by(column.asc() if sort_dir == "asc" else column.desc(), m.Flavor.id.asc())
        rows = list((await session.scalars(query.limit(limit))).all())
        specs = await _specs(session, [f.id for f in rows]) if detail else {}
    items = [flavor_view(request, f, specs.get(f.id), detail) for f in rows]
    body: dict[str, Any] = {"flavors": items}
    more = next_link(request, "flavors", items, limit)
    if more:
        body["flavors_links"] = more
    return json_response(body)


@router.get("/flavors")
async def list_flavors(request: Request) -> Response:
    return await _list(request, detail=False)


@router.get("/flavors/detail")
async def list_flavors_detail(request: Request) -> Response:
    return await _list(request, detail=True)


@router.get("/flavors/{flavor_id}")
async def show_flavor(request: Request, flavor_id: str) -> Response:
    ctx = request_context(request)
    async with state(request).db.session(write=False) as session:
        flavor = await get_flavor(session, flavor_id, ctx)
        specs = (await _specs(session, [flavor.id]))[flavor.id]
    return json_response({"flavor": flavor_view(request, flavor, specs)})


# ----- os-flavor-manage ----------------------------------------------------------------------------------------
@router.post("/flavors")
async def create_flavor(request: Request) -> Response:
    enforce(request, "os_compute_api:os-flavor-manage:create", {})
    body = await parse(request, "flavor", FlavorCreate)
    if body.description is not None and version(request) < "2.55":
        raise BadRequest("Invalid input for field/attribute flavor. Additional properties are not allowed "
                         "('description' was unexpected)")
    flavorid = body.id or str(uuidlib.uuid4())
    flavor = m.Flavor(flavorid=flavorid, name=body.name, vcpus=body.vcpus, memory_mb=body.ram, root_gb=body.disk,
                      ephemeral_gb=body.ephemeral, swap=body.swap, rxtx_factor=body.rxtx_factor,
                      is_public=body.is_public, disabled=False, description=body.description, created_at=utcnow())
    try:
        async with state(request).db.session(write=True) as session:
            if await session.scalar(select(m.Flavor.id).where(m.Flavor.name == body.name)) is not None:
                raise Conflict(f"Flavor with name {body.name} already exists.")
            if await session.scalar(select(m.Flavor.id).where(m.Flavor.flavorid == flavorid)) is not None:
                raise Conflict(f"Flavor with ID {flavorid} already exists.")
            session.add(flavor)
    except IntegrityError:  # a concurrent create won the race for the name or id
        raise Conflict(f"Flavor with name {body.name} or ID {flavorid} already exists.")
    return json_response({"flavor": flavor_view(request, flavor, {})})


@router.put("/flavors/{flavor_id}")
async def update_flavor(request: Request, flavor_id: str) -> Response:
    ctx = enforce(request, "os_compute_api:os-flavor-manage:update", {})
    if version(request) < "2.55":
        raise NotFound("Updating a flavor needs microversion 2.55 or later.")
    body = await parse(request, "flavor", FlavorUpdate)
    async with state(request).db.session(write=True) as session:
        flavor = await get_flavor(session, flavor_id, ctx)
        flavor.description = body.description
        specs = (await _specs(session, [flavor.id]))[flavor.id]
    return json_response({"flavor": flavor_view(request, flavor, specs)})


@router.delete("/flavors/{flavor_id}")
async def delete_flavor(request: Request, flavor_id: str) -> Response:
    ctx = enforce(request, "os_compute_api:os-flavor-manage:delete", {})
    async with state(request).db.session(write=True) as session:
        flavor = await get_flavor(session, flavor_id, ctx)
        # servers keep the flavor snapshot taken at boot, so deleting a flavor in use is allowed (as in Nova)
        await session.execute(delete(m.FlavorExtraSpec).where(m.FlavorExtraSpec.flavor_id == flavor.id))
        await session.execute(delete(m.FlavorProject).where(m.FlavorProject.flavor_id == flavor.id))
        await session.delete(flavor)
    return Response(status_code=202)


# ----- os-extra_specs ------------------------------------------------------------------------------------------
def _check_specs(specs: Any) -> dict[str, str]:
    if not isinstance(specs, dict):
        raise BadRequest("Invalid input for field/attribute extra_specs: it must be an object")
    result = {}
    for key, value in specs.items():
        if not SPEC_KEY_RE.match(key):
            raise BadRequest(f"Invalid input for field/attribute extra_specs. Value: {key}. The key must be 1-255 "
                             "letters, digits, spaces or '-_:.'")
        if isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str | int | float) or not 0 <= len(str(value)) <= 255:
            raise BadRequest(f"Invalid input for field/attribute {key}: the value must be a string of at most 255 "
                             "characters")
        result[key] = str(value)
    return result


@router.get("/flavors/{flavor_id}/os-extra_specs")
async def list_extra_specs(request: Request, flavor_id: str) -> Response:
    ctx = enforce(request, "os_compute_api:os-flavor-extra-specs:index")
    async with state(request).db.session(write=False) as session:
        flavor = await get_flavor(session, flavor_id, ctx)
        return json_response({"extra_specs": (await _specs(session, [flavor.id]))[flavor.id]})


@router.post("/flavors/{flavor_id}/os-extra_specs")
async def create_extra_specs(request: Request, flavor_id: str) -> Response:
    ctx = enforce(request, "os_compute_api:os-flavor-extra-specs:create", {})
    specs = _check_specs(await wrapped(request, "extra_specs"))
    async with state(request).db.session(write=True) as session:
        flavor = await get_flavor(session, flavor_id, ctx)
        await _upsert_specs(session, flavor, specs)
    return json_response({"extra_specs": specs})


async def _upsert_specs(session: Any, flavor: m.Flavor, specs: dict[str, str]) -> None:
    for key, value in specs.items():
        row = await session.get(m.FlavorExtraSpec, (flavor.id, key))
        if row is None:
            session.add(m.FlavorExtraSpec(flavor_id=flavor.id, key=key, value=value))
        else:
            row.value = value


@router.get("/flavors/{flavor_id}/os-extra_specs/{key}")
async def show_extra_spec(request: Request, flavor_id: str, key: str) -> Response:
    ctx = enforce(request, "os_compute_api:os-flavor-extra-specs:show")
    async with state(request).db.session(write=False) as session:
        flavor = await get_flavor(session, flavor_id, ctx)
        row = await session.get(m.FlavorExtraSpec, (flavor.id, key))
        if row is None:
            raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
        return json_response({key: row.value})


@router.put("/flavors/{flavor_id}/os-extra_specs/{key}")
async def update_extra_spec(request: Request, flavor_id: str, key: str) -> Response:
    ctx = enforce(request, "os_compute_api:os-flavor-extra-specs:update", {})
    raw = await json_body(request)
    if not isinstance(raw, dict) or len(raw) != 1:
        raise BadRequest("Invalid input: the body must hold exactly one key and its value.")
    if key not in raw:
        raise BadRequest("Request body and URI mismatch")
    specs = _check_specs(raw)
    async with state(request).db.session(write=True) as session:
        flavor = await get_flavor(session, flavor_id, ctx)
        await _upsert_specs(session, flavor, specs)
    return json_response(specs)


@router.delete("/flavors/{flavor_id}/os-extra_specs/{key}")
async def delete_extra_spec(request: Request, flavor_id: str, key: str) -> Response:
    ctx = enforce(request, "os_compute_api:os-flavor-extra-specs:delete", {})
    async with state(request).db.session(write=True) as session:
        flavor = await get_flavor(session, flavor_id, ctx)
        row = await session.get(m.FlavorExtraSpec, (flavor.id, key))
        if row is None:
            raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
        await session.delete(row)
    return Response(status_code=202)


# ----- os-flavor-access ----------------------------------------------------------------------------------------
async def _access_list(session: Any, flavor: m.Flavor) -> list[dict[str, str]]:
    rows = (await session.scalars(select(m.FlavorProject.project_id).where(
        m.FlavorProject.flavor_id == flavor.id).order_by(m.FlavorProject.project_id))).all()
    return [{"flavor_id": flavor.flavorid, "tenant_id": project} for project in rows]


@router.get("/flavors/{flavor_id}/os-flavor-access")
async def list_flavor_access(request: Request, flavor_id: str) -> Response:
    ctx = enforce(request, "os_compute_api:os-flavor-access", {})
    async with state(request).db.session(write=False) as session:
        flavor = await get_flavor(session, flavor_id, ctx)
        if flavor.is_public:
            raise NotFound("Access list not available for public flavors.")
        return json_response({"flavor_access": await _access_list(session, flavor)})


@router.post("/flavors/{flavor_id}/action")
async def flavor_action(request: Request, flavor_id: str) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid input: the body must hold exactly one action.")
    (name, args), = body.items()
    if name not in ("addTenantAccess", "removeTenantAccess"):
        raise BadRequest(f"There is no such action: {name}")
    policy = "add_tenant_access" if name == "addTenantAccess" else "remove_tenant_access"
    ctx = enforce(request, f"os_compute_api:os-flavor-access:{policy}", {})
    tenant = args.get("tenant") if isinstance(args, dict) else None
    if not isinstance(tenant, str) or not 1 <= len(tenant) <= 255 or set(args) != {"tenant"}:
        raise BadRequest(f"Invalid input for field/attribute {name}: 'tenant' is a required property")
    async with state(request).db.session(write=True) as session:
        flavor = await get_flavor(session, flavor_id, ctx)
        row = await session.get(m.FlavorProject, (flavor.id, tenant))
        if name == "addTenantAccess":
            if flavor.is_public:
                raise Conflict("Can not add access to a public flavor.")
            if row is not None:
                raise Conflict(f"Flavor access already exists for flavor {flavor_id} and project {tenant} "
                               "combination.")
            session.add(m.FlavorProject(flavor_id=flavor.id, project_id=tenant))
            await session.flush()
        else:
            if row is None:
                raise NotFound(f"Flavor access not found for {flavor_id} / {tenant} combination.")
            await session.delete(row)
            await session.flush()
        return json_response({"flavor_access": await _access_list(session, flavor)})
