"""`GET /limits` (absolute limits and usage of a project) and `os-quota-sets` (show, detail, defaults, update,
delete back to the defaults), over `compute/quotas.py` and the conductor's `count_usage`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import delete, func, select

from pocketstack.common.app import json_response
from pocketstack.common.errors import BadRequest
from pocketstack.compute import models as m
from pocketstack.compute.api.bodies import wrapped
from pocketstack.compute.api.common import enforce, state
from pocketstack.compute.quotas import RESOURCES, default_limits, project_limits
from pocketstack.compute.store.instances import count_usage

router = APIRouter(prefix="/v2.1")

MAX_LIMIT = 2**31 - 1


async def usage(session: Any, project_id: str, user_id: str | None) -> dict[str, int]:
    """What a project holds of every quota resource (key pairs count per user, as Nova counts them)."""
    used = {resource: 0 for resource in RESOURCES}
    used.update(await session.run_sync(lambda sync: count_usage(sync, project_id)))
    used["server_groups"] = int(await session.scalar(select(func.count()).select_from(m.ServerGroup).where(
        m.ServerGroup.project_id == project_id)) or 0)
    if user_id:
        used["key_pairs"] = int(await session.scalar(select(func.count()).select_from(m.KeyPair).where(
            m.KeyPair.user_id == user_id)) or 0)
    return used


@router.get("/limits")
async def show_limits(request: Request) -> Response:
    ctx = enforce(request, "os_compute_api:limits")
    project_id = request.query_params.get("tenant_id") or ctx.project_id
    if project_id != ctx.project_id:
        enforce(request, "os_compute_api:limits:other_project", {"project_id": project_id})
    async with state(request).db.session(write=False) as session:
        limits = await project_limits(session, state(request).settings, project_id)
        used = await usage(session, project_id, ctx.user_id if project_id == ctx.project_id else None)
    absolute = {
        "maxTotalInstances": limits["instances"], "maxTotalCores": limits["cores"],
        "maxTotalRAMSize": limits["ram"], "maxServerMeta": limits["metadata_items"],
        "maxTotalKeypairs": limits["key_pairs"], "maxServerGroups": limits["server_groups"],
        "maxServerGroupMembers": limits["server_group_members"],
        "totalInstancesUsed": used["instances"], "totalCoresUsed": used["cores"], "totalRAMUsed": used["ram"],
        "totalServerGroupsUsed": used["server_groups"],
    }
    return json_response({"limits": {"rate": [], "absolute": absolute}})


# ----- os-quota-sets ---------------------------------------------------------------------------------------------
def _no_user_quotas(request: Request) -> None:
    if request.query_params.get("user_id"):
        raise BadRequest("Per-user quotas are not supported by this cloud; quotas are per project.")


@router.get("/os-quota-sets/{project_id}/defaults")
async def quota_defaults(request: Request, project_id: str) -> Response:
    enforce(request, "os_compute_api:os-quota-sets:defaults", {"project_id": project_id})
    return json_response({"quota_set": {"id": project_id, **default_limits(state(request).settings)}})


@router.get("/os-quota-sets/{project_id}/detail")
async def quota_detail(request: Request, project_id: str) -> Response:
    ctx = enforce(request, "os_compute_api:os-quota-sets:detail", {"project_id": project_id})
    _no_user_quotas(request)
    async with state(request).db.session(write=False) as session:
        limits = await project_limits(session, state(request).settings, project_id)
        used = await usage(session, project_id, ctx.user_id if project_id == ctx.project_id else None)
    detail = {r: {"limit": limits[r], "in_use": used[r], "reserved": 0} for r in RESOURCES}
    return json_response({"quota_set": {"id": project_id, **detail}})


@router.get("/os-quota-sets/{project_id}")
async def show_quota(request: Request, project_id: str) -> Response:
    enforce(request, "os_compute_api:os-quota-sets:show", {"project_id": project_id})
    _no_user_quotas(request)
    async with state(request).db.session(write=False) as session:
        limits = await project_limits(session, state(request).settings, project_id)
    return json_response({"quota_set": {"id": project_id, **limits}})


def _limit_value(resource: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadRequest(f"Invalid input for field/attribute {resource}. Value: {value}. It is not an integer")
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"Invalid input for field/attribute {resource}. Value: {value}. '{value}' is not an "
                         "integer")
    if not -1 <= number <= MAX_LIMIT:
        raise BadRequest(f"Invalid input for field/attribute {resource}. Value: {value}. It must be between -1 "
                         f"and {MAX_LIMIT}")
    return number


@router.put("/os-quota-sets/{project_id}")
async def update_quota(request: Request, project_id: str) -> Response:
    enforce(request, "os_compute_api:os-quota-sets:update", {"project_id": project_id})
    _no_user_quotas(request)
    body = await wrapped(request, "quota_set")
    if not isinstance(body, dict):
        raise BadRequest("Invalid input for field/attribute quota_set: it must be an object")
    force = body.get("force", False)
    if not isinstance(force, bool) and str(force).lower() not in ("true", "false"):
        raise BadRequest(f"Invalid input for field/attribute force. Value: {force}. It is not a boolean")
    force = force is True or str(force).lower() == "true"
    unknown = set(body) - set(RESOURCES) - {"force"}
    if unknown:
        raise BadRequest("Invalid input for field/attribute quota_set. Additional properties are not allowed "
                         f"({', '.join(sorted(repr(k) for k in unknown))} was unexpected)")
    wanted = {resource: _limit_value(resource, value) for resource, value in body.items() if resource != "force"}
    async with state(request).db.session(write=True) as session:
        if not force:
            used = await usage(session, project_id, None)
            for resource, limit in wanted.items():
                if 0 <= limit < used[resource]:
                    raise BadRequest(f"Quota limit {limit} for {resource} must be greater than or equal to already "
                                     f"used and reserved {used[resource]}.")
        for resource, limit in wanted.items():
            row = await session.get(m.Quota, (project_id, resource))
            if row is None:
                session.add(m.Quota(project_id=project_id, resource=resource, hard_limit=limit))
            else:
                row.hard_limit = limit
        await session.flush()
        limits = await project_limits(session, state(request).settings, project_id)
    return json_response({"quota_set": limits})


@router.delete("/os-quota-sets/{project_id}")
async def delete_quota(request: Request, project_id: str) -> Response:
    enforce(request, "os_compute_api:os-quota-sets:delete", {"project_id": project_id})
    _no_user_quotas(request)
    async with state(request).db.session(write=True) as session:
        await session.execute(delete(m.Quota).where(m.Quota.project_id == project_id))
    return Response(status_code=202)

