"""`/flavors`: list/detail/show, `os-flavor-manage` (create, update description, delete), `os-extra_specs`
and `os-flavor-access`, with the body fields openstacksdk and the CLI read up to microversion 2.79."""

from __future__ import annotations

import re
import uuid as uuidlib
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pocketstack.common.apikit import enforce, version
from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.compute.api.common import limit_param, links, page_body, state
from pocketstack.compute.bodies import display_name, parse, query_bool, wrapped
from pocketstack.compute.store.flavors import SORT_KEYS, Flavor, FlavorQuery, FlavorStore

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


def _flavors(request: Request) -> FlavorStore:
    return FlavorStore(state(request).db)


# ----- views ---------------------------------------------------------------------------------------------------
def flavor_view(request: Request, flavor: Flavor, extra_specs: dict[str, str] | None,
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


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters {name}. Value: {raw}. '{raw}' is not an integer")


def _list_query(request: Request) -> FlavorQuery:
    """The flavor page the query string asks for (Nova ignores is_public for non-admins: public plus their own
    private flavors)."""
    q = request.query_params
    is_public: bool | None = True
    if request_context(request).is_admin:
        raw = q.get("is_public")
        is_public = None if raw is not None and raw.strip().lower() == "none" else query_bool(request, "is_public")
        if raw is None:
            is_public = True
    min_ram, min_disk = _int_param(request, "minRam"), _int_param(request, "minDisk")
    sort_key, sort_dir = q.get("sort_key", "flavorid"), q.get("sort_dir", "asc")
    if sort_key not in SORT_KEYS:
        raise BadRequest(f"Invalid input for query parameters sort_key. Value: {sort_key}. "
                         f"'{sort_key}' is not one of {sorted(SORT_KEYS)}")
    if sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid input for query parameters sort_dir. Value: {sort_dir}. "
                         f"'{sort_dir}' is not one of ['asc', 'desc']")
    return FlavorQuery(is_public=is_public, min_ram=min_ram, min_disk=min_disk, sort_key=sort_key,
                       sort_dir=sort_dir, marker=q.get("marker"), limit=limit_param(request))


async def _list(request: Request, detail: bool) -> Response:
    page = _list_query(request)
    rows, specs = await _flavors(request).page(request_context(request), page, with_specs=detail)
    items = [flavor_view(request, f, specs.get(f.id), detail) for f in rows]
    return json_response(page_body(request, "flavors", items, page.limit))


async def list_flavors(request: Request) -> Response:
    return await _list(request, detail=False)


async def list_flavors_detail(request: Request) -> Response:
    return await _list(request, detail=True)


async def show_flavor(request: Request, flavor_id: str) -> Response:
    flavor, specs = await _flavors(request).get_with_specs(flavor_id, request_context(request))
    return json_response({"flavor": flavor_view(request, flavor, specs)})


# ----- os-flavor-manage ----------------------------------------------------------------------------------------
async def create_flavor(request: Request) -> Response:
    enforce(request, state(request), "os_compute_api:os-flavor-manage:create", {})
    body = await parse(request, "flavor", FlavorCreate)
    if body.description is not None and version(request) < "2.55":
        raise BadRequest("Invalid input for field/attribute flavor. Additional properties are not allowed "
                         "('description' was unexpected)")
    flavor = await _flavors(request).create({
        "flavorid": body.id or str(uuidlib.uuid4()), "name": body.name, "vcpus": body.vcpus, "memory_mb": body.ram,
        "root_gb": body.disk, "ephemeral_gb": body.ephemeral, "swap": body.swap, "rxtx_factor": body.rxtx_factor,
        "is_public": body.is_public, "description": body.description})
    return json_response({"flavor": flavor_view(request, flavor, {})})


async def update_flavor(request: Request, flavor_id: str) -> Response:
    ctx = enforce(request, state(request), "os_compute_api:os-flavor-manage:update", {})
    if version(request) < "2.55":
        raise NotFound("Updating a flavor needs microversion 2.55 or later.")
    body = await parse(request, "flavor", FlavorUpdate)
    flavor, specs = await _flavors(request).set_description(flavor_id, ctx, body.description)
    return json_response({"flavor": flavor_view(request, flavor, specs)})


async def delete_flavor(request: Request, flavor_id: str) -> Response:
    ctx = enforce(request, state(request), "os_compute_api:os-flavor-manage:delete", {})
    await _flavors(request).delete(flavor_id, ctx)
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


async def list_extra_specs(request: Request, flavor_id: str) -> Response:
    ctx = enforce(request, state(request), "os_compute_api:os-flavor-extra-specs:index")
    return json_response({"extra_specs": await _flavors(request).extra_specs(flavor_id, ctx)})


async def create_extra_specs(request: Request, flavor_id: str) -> Response:
    ctx = enforce(request, state(request), "os_compute_api:os-flavor-extra-specs:create", {})
    specs = _check_specs(await wrapped(request, "extra_specs"))
    await _flavors(request).set_extra_specs(flavor_id, ctx, specs)
    return json_response({"extra_specs": specs})


async def show_extra_spec(request: Request, flavor_id: str, key: str) -> Response:
    ctx = enforce(request, state(request), "os_compute_api:os-flavor-extra-specs:show")
    return json_response({key: await _flavors(request).extra_spec(flavor_id, ctx, key)})


async def update_extra_spec(request: Request, flavor_id: str, key: str) -> Response:
    ctx = enforce(request, state(request), "os_compute_api:os-flavor-extra-specs:update", {})
    raw = await json_body(request)
    if not isinstance(raw, dict) or len(raw) != 1:
        raise BadRequest("Invalid input: the body must hold exactly one key and its value.")
    if key not in raw:
        raise BadRequest("Request body and URI mismatch")
    specs = _check_specs(raw)
    await _flavors(request).set_extra_specs(flavor_id, ctx, specs)
    return json_response(specs)


async def delete_extra_spec(request: Request, flavor_id: str, key: str) -> Response:
    ctx = enforce(request, state(request), "os_compute_api:os-flavor-extra-specs:delete", {})
    await _flavors(request).delete_extra_spec(flavor_id, ctx, key)
    return Response(status_code=200)  # Nova answers 200 (no body), not 202


# ----- os-flavor-access ----------------------------------------------------------------------------------------
async def list_flavor_access(request: Request, flavor_id: str) -> Response:
    ctx = enforce(request, state(request), "os_compute_api:os-flavor-access", {})
    return json_response({"flavor_access": await _flavors(request).access_list(flavor_id, ctx)})


async def flavor_action(request: Request, flavor_id: str) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid input: the body must hold exactly one action.")
    (name, args), = body.items()
    if name not in ("addTenantAccess", "removeTenantAccess"):
        raise BadRequest(f"There is no such action: {name}")
    policy = "add_tenant_access" if name == "addTenantAccess" else "remove_tenant_access"
    ctx = enforce(request, state(request), f"os_compute_api:os-flavor-access:{policy}", {})
    tenant = args.get("tenant") if isinstance(args, dict) else None
    if not isinstance(tenant, str) or not 1 <= len(tenant) <= 255 or set(args) != {"tenant"}:
        raise BadRequest(f"Invalid input for field/attribute {name}: 'tenant' is a required property")
    flavors = _flavors(request)
    if name == "addTenantAccess":
        access = await flavors.add_access(flavor_id, ctx, tenant)
    else:
        access = await flavors.remove_access(flavor_id, ctx, tenant)
    return json_response({"flavor_access": access})
