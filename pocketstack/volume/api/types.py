"""`/v3/{project_id}/types`: volume types, their extra specs and access lists (private types)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.volume.api.common import (
    body_of,
    bool_param,
    check_metadata,
    enforce,
    paginate,
    sort_spec,
    state,
)
from pocketstack.volume.api.views import USER_VISIBLE_EXTRA_SPECS, type_view
from pocketstack.volume.store import types as store

TYPE_SORT = {"id": "id", "name": "name", "created_at": "created_at", "is_public": "is_public"}


class TypeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=255)
    is_public: bool = Field(True, alias="os-volume-type-access:is_public")
    extra_specs: dict[str, Any] | None = None


class TypeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=255)
    is_public: bool | None = None


async def list_types(request: Request) -> Response:
    ctx = enforce(request, "volume_extension:type_get_all")
    public = request.query_params.get("is_public")
    sort = sort_spec(request, TYPE_SORT, default="name")
    # admins get the public types, or what is_public asks ("None": all); others always see the public types and
    # the private ones shared with their project
    only = (None if not ctx.is_admin or (public is not None and public.lower() == "none") else
            bool_param(public or "true", "is_public"))
    page, _, _ = paginate(request, await store.list_types(state(request).db, ctx, only), sort)
    return json_response({"volume_types": [type_view(request, t, ctx) for t in page]})


async def show_type(request: Request, type_id: str) -> Response:
    ctx = enforce(request, "volume_extension:type_get")
    try:
        vtype = await store.get_type(state(request).db, state(request).settings, ctx, type_id)
    except NotFound:
        raise NotFound(f"Volume type {type_id} could not be found.")
    return json_response({"volume_type": type_view(request, vtype, ctx)})


async def create_type(request: Request) -> Response:
    ctx = enforce(request, "volume_extension:type_create")
    body = await body_of(request, "volume_type", TypeCreate)
    name = body.name.strip()
    if not name:
        raise BadRequest("Invalid input received: the volume type name may not be blank.")
    specs = check_metadata({k: str(v) if isinstance(v, bool | int) else v for k, v in (body.extra_specs or {}).items()},
                           "extra_specs")
    vtype = await store.create_type(state(request).db, name, body.description, body.is_public, specs)
    return json_response({"volume_type": type_view(request, vtype, ctx, answer="create")})


async def update_type(request: Request, type_id: str) -> Response:
    ctx = enforce(request, "volume_extension:type_update")
    body = await body_of(request, "volume_type", TypeUpdate)
    if not body.model_fields_set:
        raise BadRequest("Invalid input: give a name, a description or is_public to update.")
    vtype = await store.update_type(state(request).db, state(request).settings, type_id, name=body.name,
                                    description=("description" in body.model_fields_set, body.description),
                                    is_public=body.is_public)
    return json_response({"volume_type": type_view(request, vtype, ctx, answer="update")})


async def delete_type(request: Request, type_id: str) -> Response:
    enforce(request, "volume_extension:type_delete")
    await store.delete_type(state(request).db, state(request).settings, type_id)
    return Response(status_code=202)


# ----- extra specs -------------------------------------------------------------------------------------------------
async def _specs(request: Request, type_id: str, action: str) -> dict[str, str]:
    ctx = enforce(request, action)
    return await store.specs(state(request).db, state(request).settings, ctx, type_id)


async def _spec_body(request: Request, key: str) -> dict[str, str]:
    raw = await json_body(request)
    if not isinstance(raw, dict) or not isinstance(raw.get(key), dict):
        raise BadRequest(f"Malformed request body: '{key}' is required.")
    return check_metadata({k: str(v) if isinstance(v, bool | int) else v for k, v in raw[key].items()},
                          "extra_specs")


async def list_specs(request: Request, type_id: str) -> Response:
    specs = await _specs(request, type_id, "volume_extension:types_extra_specs:index")
    return json_response({"extra_specs": await _visible_specs(request, specs)})


async def _visible_specs(request: Request, specs: dict[str, str]) -> dict[str, str]:
    ctx = enforce(request, "volume_extension:types_extra_specs:index")
    if state(request).policy.check("volume_extension:types_extra_specs:read_sensitive", ctx, {}):
        return specs
    return {k: v for k, v in specs.items() if k in USER_VISIBLE_EXTRA_SPECS}


async def create_specs(request: Request, type_id: str) -> Response:
    specs = await _spec_body(request, "extra_specs")
    enforce(request, "volume_extension:types_extra_specs:create")
    await store.set_specs(state(request).db, type_id, specs)
    return json_response({"extra_specs": specs})


async def show_spec(request: Request, type_id: str, key: str) -> Response:
    specs = await _visible_specs(request, await _specs(request, type_id, "volume_extension:types_extra_specs:show"))
    if key not in specs:
        raise NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
    return json_response({key: specs[key]})


async def update_spec(request: Request, type_id: str, key: str) -> Response:
    raw = await json_body(request)
    if not isinstance(raw, dict) or len(raw) != 1 or key not in raw:
        raise BadRequest("Request body and URI mismatch: the body must hold exactly the key of the URI.")
    specs = check_metadata({key: str(raw[key]) if isinstance(raw[key], bool | int) else raw[key]}, "extra_specs")
    enforce(request, "volume_extension:types_extra_specs:update")
    await store.set_specs(state(request).db, type_id, specs)
    return json_response(specs)


async def delete_spec(request: Request, type_id: str, key: str) -> Response:
    enforce(request, "volume_extension:types_extra_specs:delete")
    await store.delete_spec(state(request).db, type_id, key)
    return Response(status_code=202)


# ----- access of private types -------------------------------------------------------------------------------------
async def list_access(request: Request, type_id: str) -> Response:
    enforce(request, "volume_extension:volume_type_access:get_all_for_type")
    vtype_id, projects = await store.access_list(state(request).db, type_id)
    return json_response({"volume_type_access": [{"volume_type_id": vtype_id, "project_id": p} for p in projects]})


async def type_action(request: Request, type_id: str) -> Response:
    raw = await json_body(request)
    if not isinstance(raw, dict) or len(raw) != 1:
        raise BadRequest("Invalid request body: it must hold exactly one action.")
    (name, args), = raw.items()
    if name not in ("addProjectAccess", "removeProjectAccess"):
        raise BadRequest(f"There is no such action: {name}")
    project = args.get("project") if isinstance(args, dict) else None
    if not isinstance(project, str) or not project:
        raise BadRequest(f"Invalid input received: {name} needs a 'project'.")
    enforce(request, f"volume_extension:volume_type_access:{name}")
    await store.change_access(state(request).db, type_id, project, add=name == "addProjectAccess")
    return Response(status_code=202)
