"""`/os-server-groups`: affinity, anti-affinity and their soft variants (a `policies` list before 2.64, `policy`
plus `rules` since), with members and the server_groups quota. Boots join a group through the `group` hint."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, func, select

from pocketstack.common.app import json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Forbidden, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute.api.bodies import display_name, parse, query_bool
from pocketstack.compute.api.common import enforce, state, version
from pocketstack.compute.quotas import project_limits

router = APIRouter(prefix="/v2.1")

POLICIES = ("affinity", "anti-affinity")
SOFT_POLICIES = ("soft-affinity", "soft-anti-affinity")  # since 2.15


class GroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    policies: list[str] | None = Field(None, min_length=1, max_length=1)
    policy: str | None = None
    rules: dict[str, Any] | None = None

    _name = field_validator("name")(display_name)


def _checked_policy(request: Request, body: GroupCreate) -> tuple[str, dict[str, int]]:
    """The group's one policy and its rules, as the request's microversion allows them."""
    modern = version(request) >= "2.64"
    if modern and body.policies is not None:
        raise BadRequest("Invalid input for field/attribute server_group. Additional properties are not allowed "
                         "('policies' was unexpected)")
    if not modern and (body.policy is not None or body.rules is not None):
        raise BadRequest("Invalid input for field/attribute server_group: 'policy' and 'rules' need microversion "
                         "2.64 or later; use 'policies'.")
    policy = body.policy if modern else (body.policies or [None])[0]
    allowed = POLICIES + (SOFT_POLICIES if version(request) >= "2.15" else ())
    if policy not in allowed:
        raise BadRequest(f"Invalid input for field/attribute policy. Value: {policy}. '{policy}' is not one of "
                         f"{list(allowed)}")
    rules = body.rules or {}
    if rules:
        if policy != "anti-affinity":
            raise BadRequest(f"Only anti-affinity policy supports rules; {policy} has none.")
        if set(rules) != {"max_server_per_host"}:
            raise BadRequest("Invalid input for field/attribute rules: only 'max_server_per_host' is allowed.")
        value = rules["max_server_per_host"]
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise BadRequest(f"Invalid input for field/attribute max_server_per_host. Value: {value}. It is not "
                             "an integer")
        if isinstance(value, bool) or number < 1:
            raise BadRequest(f"Invalid input for field/attribute max_server_per_host. Value: {value}. It must "
                             "be 1 or more")
        rules = {"max_server_per_host": number}
    return policy, rules


async def _members(session: Any, uuids: list[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {u: [] for u in uuids}
    if uuids:
        for row in (await session.scalars(select(m.ServerGroupMember).where(
                m.ServerGroupMember.group_uuid.in_(uuids)).order_by(m.ServerGroupMember.instance_uuid))).all():
            result[row.group_uuid].append(row.instance_uuid)
    return result


def group_view(request: Request, group: m.ServerGroup, members: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"id": group.uuid, "name": group.name, "members": members}
    if version(request) >= "2.64":
        body["policy"] = group.policy
        body["rules"] = group.rules or {}
    else:
        body["policies"] = [group.policy]
        body["metadata"] = {}
    if version(request) >= "2.13":
        body["project_id"] = group.project_id
        body["user_id"] = group.user_id
    return body


async def _get_group(session: Any, group_id: str, ctx: RequestContext) -> m.ServerGroup:
    group = await session.get(m.ServerGroup, group_id)
    if group is None or (not ctx.is_admin and group.project_id != ctx.project_id):
        raise NotFound(f"Instance group {group_id} could not be found.")
    return group


@router.post("/os-server-groups")
async def create_group(request: Request) -> Response:
    ctx = enforce(request, "os_compute_api:os-server-groups:create")
    body = await parse(request, "server_group", GroupCreate)
    policy, rules = _checked_policy(request, body)
    group = m.ServerGroup(uuid=str(uuidlib.uuid4()), name=body.name, policy=policy, rules=rules,
                          project_id=ctx.project_id, user_id=ctx.user_id, created_at=utcnow())
    async with state(request).db.session(write=True) as session:
        limit = (await project_limits(session, state(request).settings, ctx.project_id))["server_groups"]
        count = await session.scalar(select(func.count()).select_from(m.ServerGroup).where(
            m.ServerGroup.project_id == ctx.project_id))
        if 0 <= limit <= count:
            raise Forbidden("Quota exceeded, too many server groups.")
        session.add(group)
    return json_response({"server_group": group_view(request, group, [])})


@router.get("/os-server-groups")
async def list_groups(request: Request) -> Response:
    ctx = enforce(request, "os_compute_api:os-server-groups:index")
    query = select(m.ServerGroup).order_by(m.ServerGroup.created_at, m.ServerGroup.uuid)
    if query_bool(request, "all_projects"):
        enforce(request, "os_compute_api:os-server-groups:index:all_projects", {})
    else:
        query = query.where(m.ServerGroup.project_id == ctx.project_id)
    offset = _nonnegative(request, "offset")
    limit = _nonnegative(request, "limit")
    query = query.offset(offset or 0)
    if limit is not None:
        query = query.limit(limit)
    async with state(request).db.session(write=False) as session:
        groups = list((await session.scalars(query)).all())
        members = await _members(session, [g.uuid for g in groups])
    return json_response({"server_groups": [group_view(request, g, members[g.uuid]) for g in groups]})


def _nonnegative(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise BadRequest(f"Invalid input for query parameters {name}. Value: {raw}. It must be an integer of 0 or "
                         "more")
    return int(raw)


@router.get("/os-server-groups/{group_id}")
async def show_group(request: Request, group_id: str) -> Response:
    ctx = request_context(request)
    async with state(request).db.session(write=False) as session:
        group = await _get_group(session, group_id, ctx)
        enforce(request, "os_compute_api:os-server-groups:show", {"project_id": group.project_id})
        members = (await _members(session, [group.uuid]))[group.uuid]
    return json_response({"server_group": group_view(request, group, members)})


@router.delete("/os-server-groups/{group_id}")
async def delete_group(request: Request, group_id: str) -> Response:
    ctx = request_context(request)
    async with state(request).db.session(write=True) as session:
        group = await _get_group(session, group_id, ctx)
        enforce(request, "os_compute_api:os-server-groups:delete", {"project_id": group.project_id})
        await session.execute(delete(m.ServerGroupMember).where(m.ServerGroupMember.group_uuid == group.uuid))
        await session.delete(group)
    return Response(status_code=204)
