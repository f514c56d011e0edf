"""`/v3/{project_id}/types`: volume types, their extra specs and access lists (private types)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.volume import models as m
from pocketstack.volume.api.common import (
    body_of,
    bool_param,
    check_metadata,
    enforce,
    is_uuid,
    paginate,
    sort_spec,
    state,
)
from pocketstack.volume.api.lookups import resolve_type, types_query
from pocketstack.volume.api.views import USER_VISIBLE_EXTRA_SPECS, type_view

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


def _admin_type(session: Session, type_id: str) -> m.VolumeType:
    vtype = session.get(m.VolumeType, type_id) if is_uuid(type_id) else None
    if vtype is None:
        raise NotFound(f"Volume type {type_id} could not be found.")
    return vtype


async def list_types(request: Request) -> Response:
    ctx = enforce(request, "volume_extension:type_get_all")
    q = request.query_params
    sort = sort_spec(request, TYPE_SORT, default="name")

    def read(session: Session) -> dict[str, Any]:
        query = types_query(ctx)
        public = q.get("is_public")
        if ctx.is_admin:  # admins get the public types, or what is_public asks ("None": all)
            if public is None or public.lower() != "none":
                query = query.where(m.VolumeType.is_public.is_(bool_param(public or "true", "is_public")))
        # others always see the public types and the private ones shared with their project
        page, _, _ = paginate(request, session.scalars(query).all(), sort)
        return {"volume_types": [type_view(request, t, ctx) for t in page]}

    return json_response(await state(request).db.run(read, write=False))


async def show_type(request: Request, type_id: str) -> Response:
    ctx = enforce(request, "volume_extension:type_get")

    def read(session: Session) -> dict[str, Any]:
        return {"volume_type": type_view(request, resolve_type(session, type_id, ctx, state(request).settings), ctx)}

    try:
        return json_response(await state(request).db.run(read, write=False))
    except NotFound:
        raise NotFound(f"Volume type {type_id} could not be found.")


async def create_type(request: Request) -> Response:
    ctx = enforce(request, "volume_extension:type_create")
    body = await body_of(request, "volume_type", TypeCreate)
    name = body.name.strip()
    if not name:
        raise BadRequest("Invalid input received: the volume type name may not be blank.")
    specs = check_metadata({k: str(v) if isinstance(v, bool | int) else v for k, v in (body.extra_specs or {}).items()},
                           "extra_specs")

    def write(session: Session) -> dict[str, Any]:
        if session.scalar(select(m.VolumeType).where(m.VolumeType.name == name)):
            raise Conflict(f"Volume Type {name} already exists.")
        now = utcnow()
        vtype = m.VolumeType(id=str(uuid.uuid4()), name=name, description=body.description, is_public=body.is_public,
                             created_at=now, updated_at=now)
        session.add(vtype)
        for key, value in specs.items():
            session.add(m.VolumeTypeExtraSpec(type_id=vtype.id, key=key, value=value))
        session.flush()
        session.expire(vtype, ["extra_specs"])
        return {"volume_type": type_view(request, vtype, ctx)}

    return json_response(await state(request).db.run(write, write=True))


async def update_type(request: Request, type_id: str) -> Response:
    ctx = enforce(request, "volume_extension:type_update")
    body = await body_of(request, "volume_type", TypeUpdate)
    if not body.model_fields_set:
        raise BadRequest("Invalid input: give a name, a description or is_public to update.")
    settings = state(request).settings

    def write(session: Session) -> dict[str, Any]:
        vtype = _admin_type(session, type_id)
        if body.name is not None and body.name != vtype.name:
            if vtype.name == settings.volume.default_volume_type:
                raise BadRequest("Invalid volume type: the default volume type cannot be renamed.")
            if session.scalar(select(m.VolumeType).where(m.VolumeType.name == body.name)):
                raise Conflict(f"Volume Type {body.name} already exists.")
            vtype.name = body.name
        if "description" in body.model_fields_set:
            vtype.description = body.description
        if body.is_public is not None:
            vtype.is_public = body.is_public
        vtype.updated_at = utcnow()
        session.flush()
        return {"volume_type": type_view(request, vtype, ctx)}

    return json_response(await state(request).db.run(write, write=True))


async def delete_type(request: Request, type_id: str) -> Response:
    enforce(request, "volume_extension:type_delete")
    settings = state(request).settings

    def write(session: Session) -> None:
        vtype = _admin_type(session, type_id)
        if vtype.name == settings.volume.default_volume_type:
            raise BadRequest("Invalid volume type: the default volume type cannot be deleted.")
        if session.scalar(select(m.ProjectDefaultType).where(m.ProjectDefaultType.volume_type_id == vtype.id)):
            raise BadRequest(f"Invalid volume type: {vtype.name} is the default type of a project; unset it first.")
        used = session.scalar(select(func.count()).select_from(m.Volume).where(m.Volume.volume_type_id == vtype.id))
        if used:
            raise BadRequest(f"Target volume type is still in use: {used} volume(s) have type {vtype.name}.")
        session.delete(vtype)

    await state(request).db.run(write, write=True)
    return Response(status_code=202)


# ----- extra specs -------------------------------------------------------------------------------------------------
async def _specs(request: Request, type_id: str, action: str, change: Any = None) -> dict[str, str]:
    ctx = enforce(request, action)
    settings = state(request).settings

    def run(session: Session) -> dict[str, str]:
        vtype = (_admin_type(session, type_id) if change is not None else
                 resolve_type(session, type_id, ctx, settings))
        if change is not None:
            change(session, vtype)
            vtype.updated_at = utcnow()
            session.flush()
            session.expire(vtype, ["extra_specs"])
        return {s.key: s.value for s in vtype.extra_specs}

    return await state(request).db.run(run, write=change is not None)


def _set_specs(specs: dict[str, str]) -> Any:
    def change(session: Session, vtype: m.VolumeType) -> None:
        have = {s.key: s for s in vtype.extra_specs}
        for key, value in specs.items():
            if key in have:
                have[key].value = value
            else:
                session.add(m.VolumeTypeExtraSpec(type_id=vtype.id, key=key, value=value))

    return change


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
    if state(request).policy.check("volume_extension:access_types_extra_specs", ctx, {}):
        return specs
    return {k: v for k, v in specs.items() if k in USER_VISIBLE_EXTRA_SPECS}


async def create_specs(request: Request, type_id: str) -> Response:
    specs = await _spec_body(request, "extra_specs")
    await _specs(request, type_id, "volume_extension:types_extra_specs:create", _set_specs(specs))
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
    await _specs(request, type_id, "volume_extension:types_extra_specs:update", _set_specs(specs))
    return json_response(specs)


async def delete_spec(request: Request, type_id: str, key: str) -> Response:
    def change(session: Session, vtype: m.VolumeType) -> None:
        spec = next((s for s in vtype.extra_specs if s.key == key), None)
        if spec is None:
            raise NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
        session.delete(spec)

    await _specs(request, type_id, "volume_extension:types_extra_specs:delete", change)
    return Response(status_code=202)


# ----- access of private types -------------------------------------------------------------------------------------
async def list_access(request: Request, type_id: str) -> Response:
    enforce(request, "volume_extension:volume_type_access:get_all_for_type")

    def read(session: Session) -> dict[str, Any]:
        vtype = _admin_type(session, type_id)
        if vtype.is_public:
            raise NotFound(f"Access list not available for public volume types: {type_id}.")
        rows = session.scalars(select(m.VolumeTypeProject).where(m.VolumeTypeProject.type_id == vtype.id)).all()
        return {"volume_type_access": [{"volume_type_id": vtype.id, "project_id": r.project_id} for r in rows]}

    return json_response(await state(request).db.run(read, write=False))


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

    def write(session: Session) -> None:
        vtype = _admin_type(session, type_id)
        if vtype.is_public:
            raise BadRequest(f"Invalid volume type: type access modification is not applicable to public volume "
                             f"type {type_id}.")
        row = session.get(m.VolumeTypeProject, (vtype.id, project))
        if name == "addProjectAccess":
            if row is not None:
                raise Conflict(f"Volume type access for {vtype.id} / {project} combination already exists.")
            session.add(m.VolumeTypeProject(type_id=vtype.id, project_id=project))
        else:
            if row is None:
                raise NotFound(f"Volume type access not found for {vtype.id} / {project} combination.")
            session.delete(row)

    await state(request).db.run(write, write=True)
    return Response(status_code=202)
