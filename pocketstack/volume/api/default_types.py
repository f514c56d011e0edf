"""`/v3/{project_id}/default-types` (3.62): a project's own default volume type (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.app import json_response, request_context
from pocketstack.common.errors import NotFound
from pocketstack.volume import models as m
from pocketstack.volume.api.common import body_of, enforce, require_version, state
from pocketstack.volume.api.lookups import resolve_type


class DefaultTypeSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    volume_type: str = Field(min_length=1, max_length=255)


def _view(row: m.ProjectDefaultType) -> dict[str, Any]:
    return {"project_id": row.project_id, "volume_type_id": row.volume_type_id}


async def set_default(request: Request, target: str) -> Response:
    require_version(request, "3.62")
    enforce(request, "volume_extension:default_set_or_update", {"project_id": target})
    body = await body_of(request, "default_type", DefaultTypeSet)
    ctx, settings = request_context(request), state(request).settings

    def write(session: Session) -> dict[str, Any]:
        vtype = resolve_type(session, body.volume_type, ctx, settings)
        row = session.get(m.ProjectDefaultType, target)
        if row is None:
            row = m.ProjectDefaultType(project_id=target, volume_type_id=vtype.id)
            session.add(row)
        row.volume_type_id = vtype.id
        return {"default_type": _view(row)}

    return json_response(await state(request).db.run(write, write=True))


async def show_default(request: Request, target: str) -> Response:
    require_version(request, "3.62")
    enforce(request, "volume_extension:default_get", {"project_id": target})

    def read(session: Session) -> dict[str, Any]:
        row = session.get(m.ProjectDefaultType, target)
        if row is None:
            raise NotFound(f"Default type for project {target} could not be found.")
        return {"default_type": _view(row)}

    return json_response(await state(request).db.run(read, write=False))


async def list_defaults(request: Request) -> Response:
    require_version(request, "3.62")
    enforce(request, "volume_extension:default_get_all")

    def read(session: Session) -> dict[str, Any]:
        rows = session.scalars(select(m.ProjectDefaultType).order_by(m.ProjectDefaultType.project_id)).all()
        return {"default_types": [_view(r) for r in rows]}

    return json_response(await state(request).db.run(read, write=False))


async def unset_default(request: Request, target: str) -> Response:
    require_version(request, "3.62")
    enforce(request, "volume_extension:default_unset", {"project_id": target})

    def write(session: Session) -> None:
        row = session.get(m.ProjectDefaultType, target)
        if row is None:
            raise NotFound(f"Default type for project {target} could not be found.")
        session.delete(row)

    await state(request).db.run(write, write=True)
    return Response(status_code=204)
