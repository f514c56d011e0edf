"""`/servers/{id}/os-instance-actions`: what was done to a server and the events of each action (the same
milestones as the boot flow), readable after the server is deleted since 2.21."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, or_, select

from pocketstack.common.app import json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.compute import models as m
from pocketstack.compute.api.common import isotime_micro, limit_param, next_link, state, version
from pocketstack.compute.api.servers import host_id, is_uuid

router = APIRouter(prefix="/v2.1")


async def _instance(session: Any, request: Request, server_id: str, ctx: RequestContext) -> m.Instance:
    """The server, deleted ones included since 2.21 (as Nova reads them with read_deleted)."""
    inst = await session.get(m.Instance, server_id) if is_uuid(server_id) else None
    if (inst is None or (inst.deleted and version(request) < "2.21")
            or (not ctx.is_admin and inst.project_id != ctx.project_id)):
        raise NotFound(f"Instance {server_id} could not be found.")
    return inst


def _action_view(request: Request, action: m.InstanceAction) -> dict[str, Any]:
    body = {"action": action.action, "instance_uuid": action.instance_uuid, "message": action.message,
            "project_id": action.project_id, "request_id": action.request_id, "user_id": action.user_id,
            "start_time": isotime_micro(action.start_time)}
    if version(request) >= "2.58":
        body["updated_at"] = isotime_micro(action.updated_at or action.start_time)
    return body


def _since(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters {name}. Value: {raw}. '{raw}' is not a 'date-time'")


@router.get("/servers/{server_id}/os-instance-actions")
async def list_actions(request: Request, server_id: str) -> Response:
    ctx = request_context(request)
    paginated = version(request) >= "2.58"
    limit = limit_param(request) if paginated else 100000
    query = select(m.InstanceAction).where(m.InstanceAction.instance_uuid == server_id)
    if paginated:
        since = _since(request, "changes-since")
        before = _since(request, "changes-before") if version(request) >= "2.66" else None
        if since and before and since > before:
            raise BadRequest("The value of changes-since must be less than or equal to changes-before.")
        changed = func.coalesce(m.InstanceAction.updated_at, m.InstanceAction.start_time)
        if since:
            query = query.where(changed >= since)
        if before:
            query = query.where(changed <= before)
    async with state(request).db.session(write=False) as session:
        inst = await _instance(session, request, server_id, ctx)
        state(request).policy.enforce("os_compute_api:os-instance-actions:list", ctx, {"project_id": inst.project_id})
        marker = request.query_params.get("marker") if paginated else None
        if marker is not None:
            row = await session.scalar(select(m.InstanceAction).where(
                m.InstanceAction.instance_uuid == server_id, m.InstanceAction.request_id == marker))
            if row is None:
                raise BadRequest(f"Marker {marker} could not be found.")
            query = query.where(or_(m.InstanceAction.start_time < row.start_time,
                                    (m.InstanceAction.start_time == row.start_time) & (m.InstanceAction.id < row.id)))
        rows = (await session.scalars(query.order_by(m.InstanceAction.start_time.desc(),
                                                     m.InstanceAction.id.desc()).limit(limit))).all()
    items = [_action_view(request, a) for a in rows]
    body: dict[str, Any] = {"instanceActions": items}
    more = next_link(request, f"servers/{server_id}/os-instance-actions", items, limit, key="request_id")
    if paginated and more:
        body["links"] = more
    return json_response(body)


@router.get("/servers/{server_id}/os-instance-actions/{request_id}")
async def show_action(request: Request, server_id: str, request_id: str) -> Response:
    ctx = request_context(request)
    ver = version(request)
    async with state(request).db.session(write=False) as session:
        inst = await _instance(session, request, server_id, ctx)
        target = {"project_id": inst.project_id}
        state(request).policy.enforce("os_compute_api:os-instance-actions:show", ctx, target)
        action = await session.scalar(select(m.InstanceAction).where(
            m.InstanceAction.instance_uuid == server_id, m.InstanceAction.request_id == request_id))
        if action is None:
            raise NotFound(f"Action {request_id} on instance {server_id} not found")
        events = (await session.scalars(select(m.InstanceActionEvent).where(
            m.InstanceActionEvent.action_id == action.id).order_by(m.InstanceActionEvent.start_time.desc(),
                                                                   m.InstanceActionEvent.id.desc()))).all()
    # the events policy decides who sees tracebacks; before 2.51 it also hid the events themselves
    privileged = state(request).policy.check("os_compute_api:os-instance-actions:events", ctx, target)
    body = _action_view(request, action)
    if privileged or ver >= "2.51":
        body["events"] = []
        for event in events:
            item: dict[str, Any] = {"event": event.event, "start_time": isotime_micro(event.start_time),
                                    "finish_time": isotime_micro(event.finish_time), "result": event.result}
            if privileged:
                item["traceback"] = event.traceback
            if ver >= "2.62":
                item["hostId"] = host_id(inst.project_id, event.host)
                if privileged:
                    item["host"] = event.host or ""
            body["events"].append(item)
    return json_response({"instanceAction": body})
