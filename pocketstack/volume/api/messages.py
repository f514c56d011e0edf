"""`/v3/{project_id}/messages` (3.3+): why asynchronous operations failed."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.app import json_response
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.volume import models as m
from pocketstack.volume.api.common import (
    all_projects,
    check_filters,
    collection,
    enforce,
    is_uuid,
    isotime,
    links,
    paginate,
    require_version,
    sort_spec,
    state,
    text_matches,
)

MESSAGE_FILTERS = {"resource_uuid", "resource_type", "event_id", "request_id", "message_level"}
MESSAGE_SORT = {"id": "id", "created_at": "created_at", "resource_uuid": "resource_uuid",
                "resource_type": "resource_type", "event_id": "event_id", "message_level": "message_level"}


def _view(request: Request, msg: m.Message) -> dict[str, Any]:
    return {"id": msg.id, "resource_type": msg.resource_type, "resource_uuid": msg.resource_uuid,
            "request_id": msg.request_id, "message_level": msg.message_level, "event_id": msg.event_id,
            "created_at": isotime(msg.created_at), "guaranteed_until": isotime(msg.expires_at),
            "user_message": msg.user_message, "links": links(request, "messages", msg.id)}


def _visible(session: Session, message_id: str, ctx: RequestContext) -> m.Message:
    msg = session.get(m.Message, message_id) if is_uuid(message_id) else None
    if msg is None or msg.expires_at < utcnow() or (not ctx.is_admin and msg.project_id != ctx.project_id):
        raise NotFound(f"Message {message_id} could not be found.")
    return msg


async def list_messages(request: Request) -> Response:
    require_version(request, "3.3")
    ctx = enforce(request, "message:get_all")
    filters = check_filters(request, MESSAGE_FILTERS)
    sort = sort_spec(request, MESSAGE_SORT)

    def read(session: Session) -> dict[str, Any]:
        query = select(m.Message).where(m.Message.expires_at >= utcnow())
        if not all_projects(request, ctx):
            query = query.where(m.Message.project_id == ctx.project_id)
        rows = [r for r in session.scalars(query).all()
                if all(text_matches(getattr(r, k.rstrip("~")), v, k.endswith("~")) for k, v in filters.items())]
        page, total, more = paginate(request, rows, sort)
        return collection(request, "messages", [_view(request, r) for r in page], total, more)

    return json_response(await state(request).db.run(read, write=False))


async def show_message(request: Request, message_id: str) -> Response:
    require_version(request, "3.3")
    ctx = enforce(request, "message:get")

    def read(session: Session) -> dict[str, Any]:
        return {"message": _view(request, _visible(session, message_id, ctx))}

    return json_response(await state(request).db.run(read, write=False))


async def delete_message(request: Request, message_id: str) -> Response:
    require_version(request, "3.3")
    ctx = enforce(request, "message:delete")

    def write(session: Session) -> None:
        msg = _visible(session, message_id, ctx)
        enforce(request, "message:delete", {"project_id": msg.project_id})
        session.delete(msg)

    await state(request).db.run(write, write=True)
    return Response(status_code=204)
