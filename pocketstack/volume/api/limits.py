"""`/v3/{project_id}/os-quota-sets`, `os-quota-class-sets` (the default class: what projects without their own
limits get) and `/limits`."""

from __future__ import annotations

from fastapi import Request, Response

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest
from pocketstack.volume.api.common import bool_param, enforce, state
from pocketstack.volume.store import limits as store


async def quota_defaults(request: Request, target: str) -> Response:
    enforce(request, "volume_extension:quotas:show", {"project_id": target})
    return json_response({"quota_set": {"id": target, **await store.default_limits(state(request).db,
                                                                                   state(request).settings)}})


async def show_quota(request: Request, target: str) -> Response:
    enforce(request, "volume_extension:quotas:show", {"project_id": target})
    with_usage = bool_param(request.query_params.get("usage", "false"), "usage")
    limits, used = await store.limits_and_usage(state(request).db, state(request).settings, target)
    if not with_usage:
        return json_response({"quota_set": {"id": target, **limits}})
    return json_response({"quota_set": {"id": target, **{
        resource: {"limit": limit, "in_use": used.get(resource, 0), "reserved": 0, "allocated": 0}
        for resource, limit in limits.items()}}})


def _limit_changes(raw: object, key: str) -> dict[str, int]:
    """The limits a quota (class) set update gives; which resources exist the store checks."""
    if not isinstance(raw, dict) or not isinstance(raw.get(key), dict):
        raise BadRequest(f"Missing required element '{key}' in request body.")
    changes: dict[str, int] = {}
    for resource, value in raw[key].items():
        if resource in ("id", "tenant_id", "class_name"):
            continue
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).lstrip("-").isdigit() \
                or int(value) < -1:
            raise BadRequest(f"Invalid input received: quota {resource} must be an integer of -1 or more.")
        changes[resource] = int(value)
    return changes


async def update_quota(request: Request, target: str) -> Response:
    enforce(request, "volume_extension:quotas:update", {"project_id": target})
    changes = _limit_changes(await json_body(request), "quota_set")
    result = await store.set_limits(state(request).db, state(request).settings, target, changes)
    return json_response({"quota_set": result})


async def delete_quota(request: Request, target: str) -> Response:
    enforce(request, "volume_extension:quotas:delete", {"project_id": target})
    await store.reset_limits(state(request).db, target)
    return Response(status_code=200)


async def show_quota_class(request: Request, class_name: str) -> Response:
    enforce(request, "volume_extension:quota_classes")
    limits = await store.class_limits(state(request).db, state(request).settings, class_name)
    return json_response({"quota_class_set": {"id": class_name, **limits}})


async def update_quota_class(request: Request, class_name: str) -> Response:
    enforce(request, "volume_extension:quota_classes:update")
    changes = _limit_changes(await json_body(request), "quota_class_set")
    limits = await store.set_class_limits(state(request).db, state(request).settings, class_name, changes)
    return json_response({"quota_class_set": limits})


async def limits(request: Request) -> Response:
    ctx = enforce(request, "limits_extension:used_limits")
    target = ctx.project_id
    if request.query_params.get("project_id") and ctx.is_admin:  # 3.39: an admin asks about another project
        target = request.query_params["project_id"]
    limit, used = await store.limits_and_usage(state(request).db, state(request).settings, target)
    return json_response({"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": limit["volumes"], "maxTotalSnapshots": limit["snapshots"],
        "maxTotalVolumeGigabytes": limit["gigabytes"], "maxTotalBackups": limit["backups"],
        "maxTotalBackupGigabytes": limit["backup_gigabytes"],
        "totalVolumesUsed": used["volumes"], "totalSnapshotsUsed": used["snapshots"],
        "totalGigabytesUsed": used["gigabytes"], "totalBackupsUsed": 0, "totalBackupGigabytesUsed": 0}}})
