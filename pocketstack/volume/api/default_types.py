"""`/v3/{project_id}/default-types` (3.62): a project's own default volume type (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pocketstack.common.app import json_response, request_context
from pocketstack.volume.api.common import body_of, enforce, require_version, state
from pocketstack.volume.store import default_types as store
from pocketstack.volume.store.lookups import ProjectDefaultType


class DefaultTypeSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    volume_type: str = Field(min_length=1, max_length=255)


def _view(row: ProjectDefaultType) -> dict[str, Any]:
    return {"project_id": row.project_id, "volume_type_id": row.volume_type_id}


async def set_default(request: Request, target: str) -> Response:
    require_version(request, "3.62")
    enforce(request, "volume_extension:default_set_or_update", {"project_id": target})
    body = await body_of(request, "default_type", DefaultTypeSet)
    row = await store.set_default(state(request).db, state(request).settings, request_context(request), target,
                                  body.volume_type)
    return json_response({"default_type": _view(row)})


async def show_default(request: Request, target: str) -> Response:
    require_version(request, "3.62")
    enforce(request, "volume_extension:default_get", {"project_id": target})
    return json_response({"default_type": _view(await store.get_default(state(request).db, target))})


async def list_defaults(request: Request) -> Response:
    require_version(request, "3.62")
    enforce(request, "volume_extension:default_get_all")
    return json_response({"default_types": [_view(r) for r in await store.list_defaults(state(request).db)]})


async def unset_default(request: Request, target: str) -> Response:
    require_version(request, "3.62")
    enforce(request, "volume_extension:default_unset", {"project_id": target})
    await store.unset_default(state(request).db, target)
    return Response(status_code=204)
