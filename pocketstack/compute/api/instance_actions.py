"""`/servers/{id}/os-instance-actions`: what was done to a server and the events of each action (the same
milestones as the boot flow), readable after the server is deleted since 2.21."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import Request, Response

from pocketstack.common.apikit import is_uuid, iso_micro, version
from pocketstack.common.app import json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.compute.api.common import limit_param, next_link, state
from pocketstack.compute.api.servers import host_id


def _visible(request: Request, server_id: str, ctx: RequestContext, policy: str) -> Callable[[Any], None]:
    """The check of the server row: 404 unless the caller sees it (deleted ones too since 2.21, as Nova reads
    them with read_deleted), then `policy` on it."""
    if not is_uuid(server_id):
        raise NotFound(f"Instance {server_id} could not be found.")
    ver, engine = version(request), state(request).policy

    def check(inst: Any) -> None:
        if (inst is None or (inst.deleted and ver < "2.21")
                or (not ctx.is_admin and inst.project_id != ctx.project_id)):
            raise NotFound(f"Instance {server_id} could not be found.")
        engine.enforce(policy, ctx, {"project_id": inst.project_id})

    return check


def _action_view(request: Request, action: Any) -> dict[str, Any]:
    body = {"action": action.action, "instance_uuid": action.instance_uuid, "message": action.message,
            "project_id": action.project_id, "request_id": action.request_id, "user_id": action.user_id,
            "start_time": iso_micro(action.start_time)}
    if version(request) >= "2.58":
        body["updated_at"] = iso_micro(action.updated_at or action.start_time)
    return body


def _since(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters {name}. Value: {raw}. '{raw}' is not a 'date-time'")


async def list_actions(request: Request, server_id: str) -> Response:
    ctx = request_context(request)
    paginated = version(request) >= "2.58"
    limit = limit_param(request) if paginated else 100000
    since = before = None
    if paginated:
        since = _since(request, "changes-since")
        before = _since(request, "changes-before") if version(request) >= "2.66" else None
        if since and before and since > before:
            raise BadRequest("The value of changes-since must be less than or equal to changes-before.")
    check = _visible(request, server_id, ctx, "os_compute_api:os-instance-actions:list")
    rows = await state(request).actions.actions(server_id, check, since=since, before=before, limit=limit,
                                                marker=request.query_params.get("marker") if paginated else None)
    items = [_action_view(request, a) for a in rows]
    body: dict[str, Any] = {"instanceActions": items}
    more = next_link(request, f"servers/{server_id}/os-instance-actions", items, limit, key="request_id")
    if paginated and more:
        body["links"] = more
    return json_response(body)


async def show_action(request: Request, server_id: str, request_id: str) -> Response:
    ctx = request_context(request)
    ver = version(request)
    check = _visible(request, server_id, ctx, "os_compute_api:os-instance-actions:show")
    inst, action, events = await state(request).actions.action(server_id, request_id, check)
    # the events policy decides who sees tracebacks; before 2.51 it also hid the events themselves
    privileged = state(request).policy.check("os_compute_api:os-instance-actions:events", ctx,
                                             {"project_id": inst.project_id})
    body = _action_view(request, action)
    if privileged or ver >= "2.51":
        body["events"] = []
        for event in events:
            item: dict[str, Any] = {"event": event.event, "start_time": iso_micro(event.start_time),
                                    "finish_time": iso_micro(event.finish_time), "result": event.result}
            if privileged:
                item["traceback"] = event.traceback
            if ver >= "2.62":
                item["hostId"] = host_id(inst.project_id, event.host)
                if privileged:
                    item["host"] = event.host or ""
            body["events"].append(item)
    return json_response({"instanceAction": body})
