"""`/os-server-groups`: affinity, anti-affinity and their soft variants (a `policies` list before 2.64, `policy`
plus `rules` since), with members and the server_groups quota. Boots join a group through the `group` hint."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pocketstack.common.apikit import enforce, version
from pocketstack.common.app import json_response, request_context
from pocketstack.common.errors import BadRequest
from pocketstack.compute.api.common import state
from pocketstack.compute.bodies import display_name, parse, query_bool
from pocketstack.compute.store.server_groups import ServerGroup, ServerGroupStore

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


def _groups(request: Request) -> ServerGroupStore:
    return ServerGroupStore(state(request).db)


def group_view(request: Request, group: ServerGroup, members: list[str]) -> dict[str, Any]:
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


async def create_group(request: Request) -> Response:
    ctx = enforce(request, state(request), "os_compute_api:os-server-groups:create")
    body = await parse(request, "server_group", GroupCreate)
    policy, rules = _checked_policy(request, body)
    group = await _groups(request).create(state(request).settings, ctx, body.name, policy, rules)
    return json_response({"server_group": group_view(request, group, [])})


async def list_groups(request: Request) -> Response:
    ctx = enforce(request, state(request), "os_compute_api:os-server-groups:index")
    project_id: str | None = ctx.project_id
    # as Nova: a caller not allowed every project's groups gets its own, not an error
    if query_bool(request, "all_projects") and state(request).policy.check(
            "os_compute_api:os-server-groups:index:all_projects", ctx, {}):
        project_id = None
    offset = _nonnegative(request, "offset")
    limit = _nonnegative(request, "limit")
    groups, members = await _groups(request).page(project_id, offset, limit)
    return json_response({"server_groups": [group_view(request, g, members[g.uuid]) for g in groups]})


def _nonnegative(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise BadRequest(f"Invalid input for query parameters {name}. Value: {raw}. It must be an integer of 0 or "
                         "more")
    return min(int(raw), 1000 if name == "limit" else 2**31 - 1)  # Nova's max_limit caps a page


async def show_group(request: Request, group_id: str) -> Response:
    group, members = await _groups(request).get(group_id, request_context(request), lambda group: enforce(
        request, state(request), "os_compute_api:os-server-groups:show", {"project_id": group.project_id}))
    return json_response({"server_group": group_view(request, group, members)})


async def delete_group(request: Request, group_id: str) -> Response:
    await _groups(request).delete(group_id, request_context(request), lambda group: enforce(
        request, state(request), "os_compute_api:os-server-groups:delete", {"project_id": group.project_id}))
    return Response(status_code=204)
