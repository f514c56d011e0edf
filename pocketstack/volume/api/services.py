"""`os-services`, `scheduler-stats/get_pools`, `capabilities` and `os-availability-zone` (the operator's view of
the backends)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Request, Response

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.volume import scheduler
from pocketstack.volume.api.common import bool_param, enforce, isotime, state, version
from pocketstack.volume.store import services as store
from pocketstack.volume.store.lookups import Service


def service_up(svc: Service, request: Request) -> bool:
    down_after = utcnow() - timedelta(seconds=state(request).settings.volume.service_down_time)
    return svc.last_seen_up is not None and svc.last_seen_up >= down_after


def _service_view(request: Request, svc: Service) -> dict[str, Any]:
    up = service_up(svc, request)
    body: dict[str, Any] = {"binary": svc.binary, "host": svc.host, "zone": svc.availability_zone,
                            "status": "disabled" if svc.disabled else "enabled", "state": "up" if up else "down",
                            "updated_at": isotime(svc.updated_at), "disabled_reason": svc.disabled_reason}
    if version(request) >= "3.7":
        body["cluster"] = None
    if svc.binary == scheduler.VOLUME_BINARY:
        body.update(replication_status="disabled", active_backend_id=None, frozen=False)
        if version(request) >= "3.49":
            body["backend_state"] = "up" if up else "down"
    return body


async def list_services(request: Request) -> Response:
    enforce(request, "volume_extension:services:index")
    q = request.query_params
    rows = await store.list_services(state(request).db, q.get("host"), q.get("binary"))
    return json_response({"services": [_service_view(request, s) for s in rows]})


async def update_service(request: Request, action: str) -> Response:
    enforce(request, "volume_extension:services:update")
    if action not in ("enable", "disable", "disable-log-reason"):
        raise NotFound(f"Unknown os-services action {action}.")
    raw = await json_body(request)
    if not isinstance(raw, dict) or not isinstance(raw.get("host"), str):
        raise BadRequest("Invalid input received: 'host' is required.")
    binary = raw.get("binary") or scheduler.VOLUME_BINARY
    reason = raw.get("disabled_reason")
    if action == "disable-log-reason" and (not isinstance(reason, str) or not 0 < len(reason.strip()) <= 255):
        raise BadRequest("Disabled reason contains invalid characters or is too long")
    svc = await store.set_disabled(state(request).db, raw["host"], binary, action != "enable",
                                   reason if action == "disable-log-reason" else None)
    return json_response({"host": svc.host, "binary": svc.binary, "status": "disabled" if svc.disabled else "enabled",
                          "disabled": svc.disabled, "disabled_reason": svc.disabled_reason})


async def get_pools(request: Request) -> Response:
    enforce(request, "scheduler_extension:scheduler_stats:get_pools")
    detail = bool_param(request.query_params.get("detail", "false"), "detail")
    result = []
    for pool, svc in await store.pools(state(request).db, state(request).settings):
        item: dict[str, Any] = {"name": pool.host}
        if detail:
            item["capabilities"] = {
                **svc.capabilities, "total_capacity_gb": pool.total_gb,
                "free_capacity_gb": max(pool.free_gb, 0), "allocated_capacity_gb": pool.allocated_gb,
                "provisioned_capacity_gb": pool.allocated_gb, "reserved_percentage": 0,
                "max_over_subscription_ratio": "1.0", "timestamp": isotime(svc.updated_at)}
        result.append(item)
    return json_response({"pools": result})


async def capabilities(request: Request, host: str) -> Response:
    """What a backend (`host@backend`) reports it can do (`volume backend capability show`)."""
    enforce(request, "volume_extension:capabilities")
    caps = (await store.backend(state(request).db, host)).capabilities
    return json_response({
        "namespace": f"OS::Storage::Capabilities::{host}", "vendor_name": caps.get("vendor_name"),
        "volume_backend_name": caps.get("volume_backend_name"), "pool_name": caps.get("pool_name"),
        "driver_version": caps.get("driver_version"), "storage_protocol": caps.get("storage_protocol"),
        "display_name": None, "description": None, "visibility": None, "replication_targets": [],
        "properties": {"thin_provisioning": {"title": "Thin Provisioning", "type": "boolean",
                                             "description": "Volumes are sparse files or overlays."}}})


async def availability_zones(request: Request) -> Response:
    enforce(request, "volume_extension:availability_zone_list")
    zones: dict[str, bool] = {}
    for svc in await store.volume_services(state(request).db):
        usable = service_up(svc, request) and not svc.disabled
        zones[svc.availability_zone] = zones.get(svc.availability_zone, False) or usable
    return json_response({"availabilityZoneInfo": [{"zoneName": zone, "zoneState": {"available": ok}}
                                                   for zone, ok in sorted(zones.items())]})
