"""`os-hosts` (up to microversion 2.42, gone after as in Nova): the hosts of the compute family's services with
their zones, a compute host's resources (total, used now, used by its servers, per project), enabling and
disabling a host, and the maintenance and power actions the drivers do not implement (501, as Nova's libvirt)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common.apikit import enforce, version
from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, NotFound, error_for_status
from pocketstack.compute.api.common import state
from pocketstack.compute.api.hosts import INTERNAL_ZONE
from pocketstack.compute.store.aggregates import AggregateStore
from pocketstack.compute.store.hosts import COMPUTE, HostStore

MAX_VERSION = "2.42"
SWITCH = ("enable", "disable")


def _check_version(request: Request) -> None:
    if version(request) > MAX_VERSION:
        raise NotFound("The os-hosts API is gone since microversion 2.43; use os-services and os-hypervisors.")


def _hosts(request: Request) -> HostStore:
    return HostStore(state(request).db)


async def _zones(request: Request) -> dict[str, str]:
    return await AggregateStore(state(request).db).host_zones()


async def list_hosts(request: Request) -> Response:
    enforce(request, state(request), "os_compute_api:os-hosts:list", {})
    _check_version(request)
    zone = request.query_params.get("zone")
    zones = await _zones(request)
    hosts = []
    for service in await _hosts(request).services():
        host_zone = zones.get(service.host, service.availability_zone) if service.binary == COMPUTE \
            else INTERNAL_ZONE
        if not zone or host_zone == zone:
            hosts.append({"host_name": service.host, "service": service.topic, "zone": host_zone})
    return json_response({"hosts": hosts})


def _resource(host: str, project: str, cpu: int, memory_mb: int, disk_gb: int) -> dict[str, Any]:
    return {"resource": {"host": host, "project": project, "cpu": cpu, "memory_mb": memory_mb, "disk_gb": disk_gb}}


async def show_host(request: Request, host_name: str) -> Response:
    enforce(request, state(request), "os_compute_api:os-hosts:show", {})
    _check_version(request)
    node, (vcpus, ram, disk, _count), servers = await _hosts(request).host_detail(host_name)
    resources = [_resource(host_name, "(total)", node.vcpus, node.memory_mb, node.local_gb),
                 _resource(host_name, "(used_now)", vcpus, ram + node.reserved_host_memory_mb, disk)]
    per_project: dict[str, list[int]] = {}
    for inst in servers:
        disk_gb = inst.root_gb + int((inst.flavor or {}).get("ephemeral", 0) or 0)
        sums = per_project.setdefault(inst.project_id, [0, 0, 0])
        sums[0] += inst.vcpus
        sums[1] += inst.memory_mb
        sums[2] += disk_gb
    totals = [sum(values[i] for values in per_project.values()) for i in range(3)]
    resources.append(_resource(host_name, "(used_max)", *totals))
    resources.extend(_resource(host_name, project, *values) for project, values in per_project.items())
    return json_response({"host": resources})


def _switch(body: dict[str, Any], field: str) -> str | None:
    if field not in body:
        return None
    value = body[field]
    if not isinstance(value, str) or value.lower() not in SWITCH:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value}. It must be one of "
                         "'enable' and 'disable'")
    return value.lower()


async def update_host(request: Request, host_name: str) -> Response:
    """`status` enables or disables the host's compute service; `maintenance_mode` is a driver action that
    neither driver implements (501)."""
    enforce(request, state(request), "os_compute_api:os-hosts:update", {})
    _check_version(request)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Invalid input: the body must be an object.")
    unknown = set(body) - {"status", "maintenance_mode"}
    if unknown:
        raise BadRequest(f"Invalid input: additional properties are not allowed ({', '.join(sorted(unknown))})")
    status, maintenance = _switch(body, "status"), _switch(body, "maintenance_mode")
    if status is None and maintenance is None:
        raise BadRequest("Invalid input: give status or maintenance_mode.")
    hosts = _hosts(request)
    if not await hosts.services(host_name, COMPUTE):
        raise NotFound(f"Compute host {host_name} could not be found.")
    if maintenance is not None:
        raise error_for_status(501, "Virt driver does not implement host maintenance mode.")
    service = await hosts.update_service_at(host_name, COMPUTE, {"disabled": status == "disable",
                                                                 "disabled_reason": None})
    return json_response({"host": host_name, "status": "disabled" if service.disabled else "enabled"})


async def _power_action(request: Request, host_name: str, action: str) -> Response:
    enforce(request, state(request), f"os_compute_api:os-hosts:{action}", {})
    _check_version(request)
    if not await _hosts(request).services(host_name, COMPUTE):
        raise NotFound(f"Compute host {host_name} could not be found.")
    raise error_for_status(501, "Virt driver does not implement host power management.")


async def startup_host(request: Request, host_name: str) -> Response:
    return await _power_action(request, host_name, "start")


async def shutdown_host(request: Request, host_name: str) -> Response:
    return await _power_action(request, host_name, "shutdown")


async def reboot_host(request: Request, host_name: str) -> Response:
    return await _power_action(request, host_name, "reboot")
