"""`/v3/{project_id}/messages` (3.3+): why asynchronous operations failed."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common.app import json_response
from pocketstack.volume.api.common import (
    all_projects,
    authorize,
    check_filters,
    collection,
    enforce,
    isotime,
    links,
    paginate,
    require_version,
    sort_spec,
    state,
    text_matches,
)
from pocketstack.volume.store import messages as store
from pocketstack.volume.store.lookups import Message

MESSAGE_FILTERS = {"resource_uuid", "resource_type", "event_id", "request_id", "message_level"}
MESSAGE_SORT = {"id": "id", "created_at": "created_at", "resource_uuid": "resource_uuid",
                "resource_type": "resource_type", "event_id": "event_id", "message_level": "message_level"}


def _view(request: Request, msg: Message) -> dict[str, Any]:
    return {"id": msg.id, "resource_type": msg.resource_type, "resource_uuid": msg.resource_uuid,
            "request_id": msg.request_id, "message_level": msg.message_level, "event_id": msg.event_id,
            "created_at": isotime(msg.created_at), "guaranteed_until": isotime(msg.expires_at),
            "user_message": msg.user_message, "links": links(request, "messages", msg.id)}


async def list_messages(request: Request) -> Response:
    require_version(request, "3.3")
    ctx = enforce(request, "message:get_all")
    filters = check_filters(request, MESSAGE_FILTERS)
    sort = sort_spec(request, MESSAGE_SORT)
    rows = await store.list_messages(state(request).db, None if all_projects(request, ctx) else ctx.project_id)
    rows = [r for r in rows
            if all(text_matches(getattr(r, k.rstrip("~")), v, k.endswith("~")) for k, v in filters.items())]
    page, total, more = paginate(request, rows, sort)
    return json_response(collection(request, "messages", [_view(request, r) for r in page], total, more))


async def show_message(request: Request, message_id: str) -> Response:
    require_version(request, "3.3")
    ctx = enforce(request, "message:get")
    return json_response({"message": _view(request, await store.get_message(state(request).db, message_id, ctx))})


async def delete_message(request: Request, message_id: str) -> Response:
    require_version(request, "3.3")
    ctx = enforce(request, "message:delete")
    await store.delete_message(state(request).db, message_id, ctx,
                               authorize(request, "message:delete"))
    return Response(status_code=204)
