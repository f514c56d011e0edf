"""The compute hosts as the API shows them: `os-availability-zone`, `os-hypervisors` (from `compute_nodes`, usage
from `allocations`) and `os-services` (state from the service heartbeats; enable/disable/force-down, delete)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pocketstack.common.apikit import enforce, is_uuid, iso_micro, version
from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute.api.common import limit_param, next_link, state
from pocketstack.compute.bodies import query_bool
from pocketstack.compute.store.aggregates import AggregateStore
from pocketstack.compute.store.hosts import (
    COMPUTE,
    NO_USAGE,
    ComputeNode,
    ComputeService,
    HostStore,
    Hypervisors,
    Instance,
    Usage,
)

INTERNAL_ZONE = "internal"  # where Nova shows services that are not compute hosts


def _hosts(request: Request) -> HostStore:
    return HostStore(state(request).db)


def is_up(request: Request, service: ComputeService) -> bool:
    """A service is up while its heartbeat is younger than `service_down_time` and nobody forced it down."""
    if service.forced_down or service.last_seen_up is None:
        return False
    return service.last_seen_up >= utcnow() - timedelta(seconds=state(request).settings.compute.service_down_time)


def _zone(service: ComputeService, zones: dict[str, str]) -> str:
    """A compute service is in its host's zone (from the aggregates), every other service in `internal`."""
    return zones.get(service.host, service.availability_zone) if service.binary == COMPUTE else INTERNAL_ZONE


async def _host_zones(request: Request) -> dict[str, str]:
    return await AggregateStore(state(request).db).host_zones()


# ----- os-availability-zone ---------------------------------------------------------------------------------
async def list_zones(request: Request) -> Response:
    enforce(request, state(request), "os_compute_api:os-availability-zone:list")
    services = [s for s in await _hosts(request).services() if s.binary == COMPUTE]
    host_zones = await _host_zones(request)
    zones: dict[str, bool] = {}
    for service in services:  # a zone is available when one of its compute services is enabled
        zone = _zone(service, host_zones)
        zones[zone] = zones.get(zone, False) or not service.disabled
    return json_response({"availabilityZoneInfo": [
        {"zoneName": zone, "zoneState": {"available": available}, "hosts": None}
        for zone, available in sorted(zones.items())]})


async def list_zones_detail(request: Request) -> Response:
    enforce(request, state(request), "os_compute_api:os-availability-zone:detail", {})
    services = await _hosts(request).services()
    host_zones = await _host_zones(request)
    zones: dict[str, dict[str, Any]] = {}
    for service in services:
        zone = zones.setdefault(_zone(service, host_zones), {"available": False, "hosts": {}})
        zone["available"] = zone["available"] or not service.disabled
        zone["hosts"].setdefault(service.host, {})[service.binary] = {
            "available": is_up(request, service), "active": not service.disabled,
            "updated_at": iso_micro(service.updated_at)}
    return json_response({"availabilityZoneInfo": [
        {"zoneName": name, "zoneState": {"available": zone["available"]}, "hosts": zone["hosts"]}
        for name, zone in sorted(zones.items())]})


# ----- os-hypervisors ---------------------------------------------------------------------------------------
def _hypervisor_view(request: Request, node: ComputeNode, service: ComputeService | None, used: Usage,
                     detail: bool, servers: list[Instance] | None = None) -> dict[str, Any]:
    uuids = version(request) >= "2.53"
    body: dict[str, Any] = {
        "id": node.uuid if uuids else node.id, "hypervisor_hostname": node.hypervisor_hostname,
        "state": "up" if service is not None and is_up(request, service) else "down",
        "status": "disabled" if service is None or service.disabled else "enabled",
    }
    if detail:
        vcpus, ram, disk, running = used
        ram += node.reserved_host_memory_mb
        cpu_info = {"arch": node.cpu_arch, "model": "", "vendor": "", "features": [],
                    "topology": {"cores": node.vcpus, "threads": 1, "sockets": 1}}
        body.update({
            "hypervisor_type": node.hypervisor_type, "hypervisor_version": node.hypervisor_version,
            "host_ip": node.host_ip, "vcpus": node.vcpus, "vcpus_used": vcpus, "memory_mb": node.memory_mb,
            "memory_mb_used": ram, "free_ram_mb": node.memory_mb - ram, "local_gb": node.local_gb,
            "local_gb_used": disk, "free_disk_gb": node.local_gb - disk, "disk_available_least": node.local_gb - disk,
            "running_vms": running, "current_workload": 0,
            "cpu_info": cpu_info if version(request) >= "2.28" else _json(cpu_info),
            "service": {"host": node.host, "id": (service.uuid if uuids else service.id) if service else None,
                        "disabled_reason": service.disabled_reason if service else None},
        })
    if servers is not None:
        body["servers"] = [{"name": f"instance-{i.uuid[:8]}", "uuid": i.uuid} for i in servers]
    return body


def _json(value: Any) -> str:
    return json.dumps(value)


async def _list_hypervisors(request: Request, detail: bool, pattern: str | None = None,
                            with_servers: bool = False) -> Response:
    q = request.query_params
    uuids = version(request) >= "2.53"
    if uuids:
        pattern = q.get("hypervisor_hostname_pattern", pattern)
        with_servers = bool(query_bool(request, "with_servers")) or with_servers
    limit = limit_param(request) if version(request) >= "2.33" else 100000
    marker = q.get("marker") if version(request) >= "2.33" else None
    found = await _hosts(request).hypervisors(pattern=pattern, marker=marker, by_uuid=uuids, limit=limit,
                                              with_servers=with_servers)
    if pattern is not None and not found.nodes:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    items = [_hypervisor_view(request, n, found.services.get(n.host), found.usage.get(n.id, NO_USAGE), detail,
                              found.servers.get(n.host) if with_servers else None) for n in found.nodes]
    body: dict[str, Any] = {"hypervisors": items}
    more = next_link(request, "os-hypervisors", items, limit) if version(request) >= "2.33" else []
    if more:
        body["hypervisors_links"] = more
    return json_response(body)


async def list_hypervisors(request: Request) -> Response:
    enforce(request, state(request), "os_compute_api:os-hypervisors:list", {})
    return await _list_hypervisors(request, detail=False)


async def list_hypervisors_detail(request: Request) -> Response:
    enforce(request, state(request), "os_compute_api:os-hypervisors:list-detail", {})
    return await _list_hypervisors(request, detail=True)


async def hypervisor_statistics(request: Request) -> Response:
    enforce(request, state(request), "os_compute_api:os-hypervisors:statistics", {})
    if version(request) >= "2.88":
        raise NotFound("The hypervisor statistics API is gone since microversion 2.88.")
    nodes, usage = await _hosts(request).all_nodes()
    stats = dict.fromkeys(("count", "vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "free_ram_mb",
                           "local_gb", "local_gb_used", "free_disk_gb", "disk_available_least", "running_vms",
                           "current_workload"), 0)
    for node in nodes:
        vcpus, ram, disk, running = usage.get(node.id, NO_USAGE)
        ram += node.reserved_host_memory_mb
        stats["count"] += 1
        stats["vcpus"] += node.vcpus
        stats["vcpus_used"] += vcpus
        stats["memory_mb"] += node.memory_mb
        stats["memory_mb_used"] += ram
        stats["free_ram_mb"] += node.memory_mb - ram
        stats["local_gb"] += node.local_gb
        stats["local_gb_used"] += disk
        stats["free_disk_gb"] += node.local_gb - disk
        stats["disk_available_least"] += node.local_gb - disk
        stats["running_vms"] += running
    return json_response({"hypervisor_statistics": stats})


async def search_hypervisors(request: Request, pattern: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-hypervisors:search", {})
    if version(request) >= "2.53":
        raise NotFound("Use GET /os-hypervisors?hypervisor_hostname_pattern= since microversion 2.53.")
    return await _list_hypervisors(request, detail=False, pattern=pattern)


async def hypervisor_servers(request: Request, pattern: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-hypervisors:servers", {})
    if version(request) >= "2.53":
        raise NotFound("Use GET /os-hypervisors?hypervisor_hostname_pattern=&with_servers=true since "
                       "microversion 2.53.")
    return await _list_hypervisors(request, detail=False, pattern=pattern, with_servers=True)


async def _hypervisor(request: Request, hypervisor_id: str, with_servers: bool
                      ) -> tuple[ComputeNode, Hypervisors]:
    """The node the path names (by uuid since 2.53: 400 when not a uuid; else by id; 404 when missing) and what
    its view needs."""
    uuids = version(request) >= "2.53"
    if uuids and not is_uuid(hypervisor_id):
        raise BadRequest(f"Invalid uuid {hypervisor_id}")
    if not uuids and not hypervisor_id.isdigit():  # Nova looks such an id up and finds nothing
        raise NotFound(f"Hypervisor with ID '{hypervisor_id}' could not be found.")
    found = await _hosts(request).hypervisor(hypervisor_id, by_uuid=uuids, with_servers=with_servers)
    return found.nodes[0], found


async def hypervisor_uptime(request: Request, hypervisor_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-hypervisors:uptime", {})
    node, found = await _hypervisor(request, hypervisor_id, with_servers=False)
    service = found.services.get(node.host)
    agents = state(request).agents
    if service is None or not is_up(request, service) or agents is None:
        raise BadRequest(f"Compute service of {node.host} is unavailable at this time.")
    body = _hypervisor_view(request, node, service, NO_USAGE, detail=False)
    body["uptime"] = await agents.get_host_uptime(node.host)
    return json_response({"hypervisor": body})


async def show_hypervisor(request: Request, hypervisor_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-hypervisors:show", {})
    with_servers = version(request) >= "2.53" and bool(query_bool(request, "with_servers"))
    node, found = await _hypervisor(request, hypervisor_id, with_servers)
    servers = found.servers[node.host] if with_servers else None
    return json_response({"hypervisor": _hypervisor_view(request, node, found.services.get(node.host),
                                                         found.usage.get(node.id, NO_USAGE), True, servers)})


# ----- os-services ------------------------------------------------------------------------------------------
def _service_view(request: Request, service: ComputeService, zones: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": service.uuid if version(request) >= "2.53" else service.id, "binary": service.binary,
        "host": service.host, "zone": _zone(service, zones), "status": "disabled" if service.disabled else "enabled",
        "state": "up" if is_up(request, service) else "down", "disabled_reason": service.disabled_reason,
        "updated_at": iso_micro(service.updated_at),
    }
    if version(request) >= "2.11":
        body["forced_down"] = service.forced_down
    return body


async def list_services(request: Request) -> Response:
    enforce(request, state(request), "os_compute_api:os-services:list", {})
    rows = await _hosts(request).services(request.query_params.get("host"), request.query_params.get("binary"))
    zones = await _host_zones(request)
    return json_response({"services": [_service_view(request, s, zones) for s in rows]})


class ServiceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(None, pattern="^(enabled|disabled)$")
    disabled_reason: str | None = Field(None, min_length=1, max_length=255)
    forced_down: bool | None = None


class LegacyServiceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = Field(min_length=1, max_length=255)
    binary: str = Field(min_length=1, max_length=255)
    disabled_reason: str | None = Field(None, min_length=1, max_length=255)
    forced_down: bool | None = None


LEGACY_ACTIONS = ("enable", "disable", "disable-log-reason", "force-down")


async def update_service(request: Request, service_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-services:update", {})
    if version(request) < "2.53":
        if service_id not in LEGACY_ACTIONS:
            raise NotFound(f"Unknown action {service_id}")
        return await _legacy_update(request, service_id)
    if not is_uuid(service_id):
        raise BadRequest(f"Invalid uuid {service_id}")
    body = await _parse_body(request, ServiceUpdate)
    if not body.model_fields_set:
        raise BadRequest("Invalid input: give at least one of status, disabled_reason and forced_down.")
    if body.disabled_reason is not None and body.status != "disabled":
        raise BadRequest("Specifying 'disabled_reason' with status 'enabled' or without a status is invalid.")
    changes: dict[str, Any] = {}
    if body.status is not None:
        disabled = body.status == "disabled"
        changes.update(disabled=disabled, disabled_reason=body.disabled_reason if disabled else None)
    if body.forced_down is not None:
        changes["forced_down"] = body.forced_down
    service = await _hosts(request).update_service(service_id, changes)
    return json_response({"service": _service_view(request, service, await _host_zones(request))})


async def _parse_body(request: Request, model: type[BaseModel]) -> Any:
    raw = await json_body(request)
    if not isinstance(raw, dict):
        raise BadRequest("Invalid input: the body must be an object.")
    return model.model_validate(raw)


async def _legacy_update(request: Request, action: str) -> Response:
    """Before 2.53 services are addressed by host and binary: PUT /os-services/{enable,disable,...}."""
    body = await _parse_body(request, LegacyServiceUpdate)
    if action == "force-down" and (version(request) < "2.11" or body.forced_down is None):
        raise BadRequest("Invalid input: force-down needs microversion 2.11 and 'forced_down'.")
    if action == "disable-log-reason" and not body.disabled_reason:
        raise BadRequest("Missing disabled reason field")
    if action == "force-down":
        changes: dict[str, Any] = {"forced_down": bool(body.forced_down)}
    else:
        changes = {"disabled": action != "enable",
                   "disabled_reason": body.disabled_reason if action == "disable-log-reason" else None}
    service = await _hosts(request).update_service_at(body.host, body.binary, changes)
    result: dict[str, Any] = {"host": service.host, "binary": service.binary}
    if action == "force-down":
        result["forced_down"] = service.forced_down
    else:
        result["status"] = "disabled" if service.disabled else "enabled"
        if action == "disable-log-reason":
            result["disabled_reason"] = service.disabled_reason
    return json_response({"service": result})


async def delete_service(request: Request, service_id: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-services:delete", {})
    uuids = version(request) >= "2.53"
    if (uuids and not is_uuid(service_id)) or (not uuids and not service_id.isdigit()):
        raise BadRequest(f"Invalid service id {service_id}")
    await _hosts(request).delete_service(service_id, by_uuid=uuids)
    return Response(status_code=204)

