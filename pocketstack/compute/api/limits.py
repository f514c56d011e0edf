"""`GET /limits` (absolute limits and usage of a project), `os-quota-sets` (show, detail, defaults, update, delete
back to the defaults; per user with `?user_id=`) and `os-quota-class-sets`, each body with the resources of its
microversion (`compute/quotas.py`), over `store/quotas.py`."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common.apikit import enforce, version
from pocketstack.common.app import json_response
from pocketstack.common.errors import BadRequest
from pocketstack.compute.api.common import state
from pocketstack.compute.bodies import wrapped
from pocketstack.compute.quotas import quota_class_resources, quota_set_resources

MAX_LIMIT = 2**31 - 1


async def show_limits(request: Request) -> Response:
    ctx = enforce(request, state(request), "os_compute_api:limits")
    project_id = request.query_params.get("tenant_id") or ctx.project_id
    if "tenant_id" in request.query_params:  # as Nova: asking for a project at all is the admin's, even one's own
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
    ver = version(request)
    if ver < "2.36":  # the network limits, proxied from nova-network once; nothing counts against them here
        absolute.update(maxSecurityGroups=limits["security_groups"],
                        maxSecurityGroupRules=limits["security_group_rules"],
                        maxTotalFloatingIps=limits["floating_ips"], totalFloatingIpsUsed=0,
                        totalSecurityGroupsUsed=0)
    if ver < "2.39":
        absolute["maxImageMeta"] = limits["metadata_items"]
    if ver < "2.57":
        absolute.update(maxPersonality=limits["injected_files"],
                        maxPersonalitySize=limits["injected_file_content_bytes"])
    return json_response({"limits": {"rate": [], "absolute": absolute}})


# ----- os-quota-sets ---------------------------------------------------------------------------------------------
def _user_id(request: Request) -> str | None:
    return request.query_params.get("user_id") or None


def _shown(request: Request, limits: dict[str, Any]) -> dict[str, Any]:
    return {r: limits[r] for r in quota_set_resources(version(request))}


async def quota_defaults(request: Request, project_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-quota-sets:defaults", {"project_id": project_id})
    defaults = await state(request).quotas.defaults()
    return json_response({"quota_set": {"id": project_id, **_shown(request, defaults)}})


async def quota_detail(request: Request, project_id: str) -> Response:
    ctx = enforce(request, state(request), "os_compute_api:os-quota-sets:detail", {"project_id": project_id})
    user_id = _user_id(request)
    limits, used = await state(request).quotas.limits_and_usage(
        project_id, user_id or (ctx.user_id if project_id == ctx.project_id else None), only_user=bool(user_id))
    detail = {r: {"limit": limits[r], "in_use": used[r], "reserved": 0} for r in quota_set_resources(version(request))}
    return json_response({"quota_set": {"id": project_id, **detail}})


async def show_quota(request: Request, project_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-quota-sets:show", {"project_id": project_id})
    limits = await state(request).quotas.limits(project_id, _user_id(request))
    return json_response({"quota_set": {"id": project_id, **_shown(request, limits)}})


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


def _wanted(body: Any, field: str, allowed: tuple[str, ...], extra: tuple[str, ...] = ()) -> dict[str, int]:
    """The limits a quota body sets: known resources of the microversion only, each an integer in [-1, 2^31)."""
    if not isinstance(body, dict):
        raise BadRequest(f"Invalid input for field/attribute {field}: it must be an object")
    unknown = set(body) - set(allowed) - set(extra)
    if unknown:
        raise BadRequest(f"Invalid input for field/attribute {field}. Additional properties are not allowed "
                         f"({', '.join(sorted(repr(k) for k in unknown))} was unexpected)")
    return {resource: _limit_value(resource, value) for resource, value in body.items() if resource not in extra}


async def update_quota(request: Request, project_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-quota-sets:update", {"project_id": project_id})
    body = await wrapped(request, "quota_set")
    wanted = _wanted(body, "quota_set", quota_set_resources(version(request)), ("force",))
    force = body.get("force", False)
    if not isinstance(force, bool) and str(force).lower() not in ("true", "false"):
        raise BadRequest(f"Invalid input for field/attribute force. Value: {force}. It is not a boolean")
    force = force is True or str(force).lower() == "true"
    limits = await state(request).quotas.update(project_id, wanted, force=force, user_id=_user_id(request))
    return json_response({"quota_set": _shown(request, limits)})


async def delete_quota(request: Request, project_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-quota-sets:delete", {"project_id": project_id})
    await state(request).quotas.delete(project_id, _user_id(request))
    return Response(status_code=202)


# ----- os-quota-class-sets -----------------------------------------------------------------------------------
def _class_name(class_name: str) -> str:
    if not 1 <= len(class_name) <= 255:
        raise BadRequest("quota_class_name has to be between 1 and 255 characters long.")
    return class_name


async def show_quota_class(request: Request, class_name: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-quota-class-sets:show", {"quota_class": class_name})
    limits = await state(request).quotas.class_limits(_class_name(class_name))
    shown = {r: limits[r] for r in quota_class_resources(version(request))}
    return json_response({"quota_class_set": {"id": class_name, **shown}})


async def update_quota_class(request: Request, class_name: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-quota-class-sets:update", {"quota_class": class_name})
    _class_name(class_name)
    allowed = quota_class_resources(version(request))
    wanted = _wanted(await wrapped(request, "quota_class_set"), "quota_class_set", allowed)
    limits = await state(request).quotas.update_class(class_name, wanted)
    return json_response({"quota_class_set": {r: limits[r] for r in allowed}})
