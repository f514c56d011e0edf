"""`os-simple-tenant-usage` (per project: hours, vCPU, RAM and disk hours of each server over a period, from the
servers' launch and termination times; paged since 2.40), `os-instance_usage_audit_log` (the audit periods of the
compute hosts)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import Request, Response

from pocketstack.common.apikit import enforce, iso_micro, version
from pocketstack.common.app import json_response
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute.api.common import base_url, limit_param, state
from pocketstack.compute.store.usage import Instance, UsageStore

TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def _usage(request: Request) -> UsageStore:
    return UsageStore(state(request).db)


def _parse_time(raw: str | None) -> datetime:
    if raw is None:
        return utcnow()
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(raw, fmt)
        except ValueError:
            continue
    raise BadRequest(f"Invalid input for query parameters: datetime {raw} is in an invalid format; use "
                     "YYYY-MM-DDTHH:MM:SS[.ffffff].")


def _period(request: Request) -> tuple[datetime, datetime]:
    start, stop = _parse_time(request.query_params.get("start")), _parse_time(request.query_params.get("end"))
    if start > stop:
        raise BadRequest("Invalid start time. The start time cannot occur after the end time.")
    return start, stop


def _hours(inst: Instance, start: datetime, stop: datetime) -> float:
    """Hours a server was up inside the period (from launch to termination, clipped to it)."""
    if inst.launched_at is None or inst.launched_at > stop:
        return 0.0
    if inst.terminated_at is not None and inst.terminated_at < start:
        return 0.0
    end = min(stop, inst.terminated_at) if inst.terminated_at is not None else stop
    return max((end - max(inst.launched_at, start)).total_seconds() / 3600.0, 0.0)


def _server_usage(inst: Instance, start: datetime, stop: datetime) -> dict[str, Any]:
    flavor = inst.flavor or {}
    ended = inst.terminated_at
    launched = inst.launched_at or inst.created_at
    return {
        "instance_id": inst.uuid, "name": inst.display_name, "tenant_id": inst.project_id,
        "hours": _hours(inst, start, stop), "memory_mb": inst.memory_mb, "vcpus": inst.vcpus,
        "local_gb": inst.root_gb + int(flavor.get("ephemeral", 0) or 0), "flavor": flavor.get("name", ""),
        "started_at": iso_micro(launched), "ended_at": iso_micro(ended),
        "state": "terminated" if ended is not None else inst.vm_state,
        "uptime": int(((ended or utcnow()) - launched).total_seconds()),
    }


def _summaries(instances: list[Instance], start: datetime, stop: datetime,
               detailed: bool) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for inst in instances:
        info = _server_usage(inst, start, stop)
        summary = result.setdefault(inst.project_id, {
            "tenant_id": inst.project_id, "start": iso_micro(start), "stop": iso_micro(stop), "total_hours": 0.0,
            "total_local_gb_usage": 0.0, "total_vcpus_usage": 0.0, "total_memory_mb_usage": 0.0,
            **({"server_usages": []} if detailed else {})})
        summary["total_hours"] += info["hours"]
        summary["total_local_gb_usage"] += info["local_gb"] * info["hours"]
        summary["total_vcpus_usage"] += info["vcpus"] * info["hours"]
        summary["total_memory_mb_usage"] += info["memory_mb"] * info["hours"]
        if detailed:
            summary["server_usages"].append(info)
    return result


def _page(request: Request) -> tuple[int | None, str | None]:
    if version(request) < "2.40":
        return None, None
    return limit_param(request), request.query_params.get("marker")


def _next(request: Request, instances: list[Instance], limit: int | None) -> list[dict[str, str]]:
    if limit is None or not instances or len(instances) < limit:
        return []
    params = dict(request.query_params)
    params["marker"] = instances[-1].uuid
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return [{"rel": "next", "href": f"{base_url(request)}{request.url.path}?{query}"}]


async def list_tenant_usages(request: Request) -> Response:
    enforce(request, state(request), "os_compute_api:os-simple-tenant-usage:list", {})
    start, stop = _period(request)
    detailed = request.query_params.get("detailed", "0") not in ("0", "", "false", "False")
    limit, marker = _page(request)
    instances = await _usage(request).active_instances(start, stop, limit=limit, marker=marker)
    body: dict[str, Any] = {"tenant_usages": list(_summaries(instances, start, stop, detailed).values())}
    more = _next(request, instances, limit)
    if more:
        body["tenant_usages_links"] = more
    return json_response(body)


async def show_tenant_usage(request: Request, tenant_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-simple-tenant-usage:show", {"project_id": tenant_id})
    start, stop = _period(request)
    limit, marker = _page(request)
    instances = await _usage(request).active_instances(start, stop, project_id=tenant_id, limit=limit,
                                                       marker=marker)
    body: dict[str, Any] = {"tenant_usage": _summaries(instances, start, stop, True).get(tenant_id, {})}
    more = _next(request, instances, limit)
    if more:
        body["tenant_usage_links"] = more
    return json_response(body)


async def show_no_tenant_usage(request: Request) -> Response:
    """`os-simple-tenant-usage/` names no project: 404 as in Nova (not the list the bare path gives)."""
    enforce(request, state(request), "os_compute_api:os-simple-tenant-usage:show", {"project_id": ""})
    raise NotFound("The resource could not be found: a project id is required after os-simple-tenant-usage/.")


# ----- os-instance_usage_audit_log ---------------------------------------------------------------------------
def _audit_period(before: datetime) -> tuple[datetime, datetime]:
    """The last completed monthly audit period before `before` (Nova's default `instance_usage_audit_period`)."""
    end = before.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    begin = (end - timedelta(days=1)).replace(day=1)
    return begin, end


async def _audit_log(request: Request, before: datetime) -> dict[str, Any]:
    """No host runs the usage audit (Nova's `instance_usage_audit` is off by default, pocketstack has none), so
    every compute host is reported as not run for the period."""
    begin, end = _audit_period(before)
    hosts = await _usage(request).compute_hosts()
    return {"period_beginning": str(begin), "period_ending": str(end), "num_hosts": len(hosts),
            "num_hosts_done": 0, "num_hosts_running": 0, "hosts_not_run": hosts, "num_hosts_not_run": len(hosts),
            "total_instances": 0, "total_errors": 0, "log": {},
            "overall_status": f"{'ALL' if not hosts else f'0 of {len(hosts)}'} hosts done. 0 errors."}


async def list_audit_logs(request: Request) -> Response:
    enforce(request, state(request), "os_compute_api:os-instance-usage-audit-log:list", {})
    return json_response({"instance_usage_audit_logs": await _audit_log(request, utcnow())})


async def show_audit_log(request: Request, before_timestamp: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-instance-usage-audit-log:show", {})
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f"):
        try:
            before = datetime.strptime(before_timestamp, fmt)
            break
        except ValueError:
            continue
    else:
        raise BadRequest(f"Invalid timestamp for date {before_timestamp}")
    return json_response({"instance_usage_audit_log": await _audit_log(request, before)})
