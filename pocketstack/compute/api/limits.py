"""`GET /limits` (absolute limits and usage of a project) and `os-quota-sets` (show, detail, defaults, update,
delete back to the defaults), over `compute/quotas.py` and `store/quotas.py`."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common.apikit import enforce
from pocketstack.common.app import json_response
from pocketstack.common.errors import BadRequest
from pocketstack.compute.api.common import state
from pocketstack.compute.bodies import wrapped
from pocketstack.compute.quotas import RESOURCES, default_limits

MAX_LIMIT = 2**31 - 1


async def show_limits(request: Request) -> Response:
    ctx = enforce(request, state(request), "os_compute_api:limits")
    project_id = request.query_params.get("tenant_id") or ctx.project_id
    if project_id != ctx.project_id:
        enforce(request, state(request), "os_compute_api:limits:other_project", {"project_id": project_id})
    limits, used = await state(request).quotas.limits_and_usage(
        project_id, ctx.user_id if project_id == ctx.project_id else None)
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


async def quota_defaults(request: Request, project_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-quota-sets:defaults", {"project_id": project_id})
    return json_response({"quota_set": {"id": project_id, **default_limits(state(request).settings)}})


async def quota_detail(request: Request, project_id: str) -> Response:
    ctx = enforce(request, state(request), "os_compute_api:os-quota-sets:detail", {"project_id": project_id})
    _no_user_quotas(request)
    limits, used = await state(request).quotas.limits_and_usage(
        project_id, ctx.user_id if project_id == ctx.project_id else None)
    detail = {r: {"limit": limits[r], "in_use": used[r], "reserved": 0} for r in RESOURCES}
    return json_response({"quota_set": {"id": project_id, **detail}})


async def show_quota(request: Request, project_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-quota-sets:show", {"project_id": project_id})
    _no_user_quotas(request)
    limits = await state(request).quotas.limits(project_id)
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


async def update_quota(request: Request, project_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-quota-sets:update", {"project_id": project_id})
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
    limits = await state(request).quotas.update(project_id, wanted, force=force)
    return json_response({"quota_set": limits})


async def delete_quota(request: Request, project_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-quota-sets:delete", {"project_id": project_id})
    _no_user_quotas(request)
    await state(request).quotas.delete(project_id)
    return Response(status_code=202)

