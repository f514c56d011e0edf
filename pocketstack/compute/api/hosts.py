"""The compute hosts as the API shows them: `os-availability-zone`, `os-hypervisors` (from `compute_nodes`, usage
from `allocations`) and `os-services` (state from the service heartbeats; enable/disable/force-down, delete)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, Conflict, NotFound, error_for_status
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute.api.bodies import query_bool
from pocketstack.compute.api.common import enforce, isotime_micro, limit_param, next_link, state, version
from pocketstack.compute.api.servers import is_uuid

router = APIRouter(prefix="/v2.1")

COMPUTE = "nova-compute"
INTERNAL_ZONE = "internal"  # where Nova shows services that are not compute hosts


def is_up(request: Request, service: m.ComputeService) -> bool:
    """A service is up while its heartbeat is younger than `service_down_time` and nobody forced it down."""
    if service.forced_down or service.last_seen_up is None:
        return False
    return service.last_seen_up >= utcnow() - timedelta(seconds=state(request).settings.compute.service_down_time)


def _zone(service: m.ComputeService) -> str:
    return service.availability_zone if service.binary == COMPUTE else INTERNAL_ZONE


async def _services(session: Any) -> list[m.ComputeService]:
    return list((await session.scalars(select(m.ComputeService).order_by(m.ComputeService.id))).all())


# ----- os-availability-zone ---------------------------------------------------------------------------------
@router.get("/os-availability-zone")
async def list_zones(request: Request) -> Response:
    enforce(request, "os_compute_api:os-availability-zone:list")
    async with state(request).db.session(write=False) as session:
        services = [s for s in await _services(session) if s.binary == COMPUTE]
    zones: dict[str, bool] = {}
    for service in services:  # a zone is available when one of its compute services is enabled
        zones[service.availability_zone] = zones.get(service.availability_zone, False) or not service.disabled
    return json_response({"availabilityZoneInfo": [
        {"zoneName": zone, "zoneState": {"available": available}, "hosts": None}
        for zone, available in sorted(zones.items())]})


@router.get("/os-availability-zone/detail")
async def list_zones_detail(request: Request) -> Response:
    enforce(request, "os_compute_api:os-availability-zone:detail", {})
    async with state(request).db.session(write=False) as session:
        services = await _services(session)
    zones: dict[str, dict[str, Any]] = {}
    for service in services:
        zone = zones.setdefault(_zone(service), {"available": False, "hosts": {}})
        zone["available"] = zone["available"] or not service.disabled
        zone["hosts"].setdefault(service.host, {})[service.binary] = {
            "available": is_up(request, service), "active": not service.disabled,
            "updated_at": isotime_micro(service.updated_at)}
    return json_response({"availabilityZoneInfo": [
        {"zoneName": name, "zoneState": {"available": zone["available"]}, "hosts": zone["hosts"]}
        for name, zone in sorted(zones.items())]})


# ----- os-hypervisors ---------------------------------------------------------------------------------------
async def _node_usage(session: Any) -> dict[int, tuple[int, int, int, int]]:
    """node id -> (vcpus, memory MiB, disk GiB, servers) claimed by allocations."""
    rows = await session.execute(select(
        m.Allocation.node_id, func.sum(m.Allocation.vcpus), func.sum(m.Allocation.memory_mb),
        func.sum(m.Allocation.disk_gb), func.count()).group_by(m.Allocation.node_id))
    return {r[0]: (int(r[1] or 0), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0)) for r in rows.all()}


async def _compute_services(session: Any) -> dict[str, m.ComputeService]:
    return {s.host: s for s in (await session.scalars(select(m.ComputeService).where(
        m.ComputeService.binary == COMPUTE))).all()}


def _hypervisor_view(request: Request, node: m.ComputeNode, service: m.ComputeService | None,
                     used: tuple[int, int, int, int], detail: bool,
                     servers: list[m.Instance] | None = None) -> dict[str, Any]:
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


async def _servers_by_host(session: Any, hosts: list[str]) -> dict[str, list[m.Instance]]:
    result: dict[str, list[m.Instance]] = {h: [] for h in hosts}
    if hosts:
        for inst in (await session.scalars(select(m.Instance).where(
                m.Instance.host.in_(hosts), m.Instance.deleted.is_(False)).order_by(m.Instance.created_at))).all():
            result[inst.host].append(inst)
    return result


async def _list_hypervisors(request: Request, detail: bool, pattern: str | None = None,
                            with_servers: bool = False) -> Response:
    q = request.query_params
    uuids = version(request) >= "2.53"
    if uuids:
        pattern = q.get("hypervisor_hostname_pattern", pattern)
        with_servers = bool(query_bool(request, "with_servers")) or with_servers
    limit = limit_param(request) if version(request) >= "2.33" else 100000
    query = select(m.ComputeNode).order_by(m.ComputeNode.id)
    if pattern is not None:
        query = query.where(m.ComputeNode.hypervisor_hostname.contains(pattern, autoescape=True))
    async with state(request).db.session(write=False) as session:
        marker = q.get("marker") if version(request) >= "2.33" else None
        if marker is not None:
            column = m.ComputeNode.uuid if uuids else m.ComputeNode.id
            marker_node = await session.scalar(select(m.ComputeNode).where(column == marker))
            if marker_node is None:
                raise BadRequest(f"marker [{marker}] not found")
            query = query.where(m.ComputeNode.id > marker_node.id)
        nodes = list((await session.scalars(query.limit(limit))).all())
        services = await _compute_services(session)
        usage = await _node_usage(session)
        servers = await _servers_by_host(session, [n.host for n in nodes]) if with_servers else {}
    if pattern is not None and not nodes:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    items = [_hypervisor_view(request, n, services.get(n.host), usage.get(n.id, (0, 0, 0, 0)), detail,
                              servers.get(n.host) if with_servers else None) for n in nodes]
    body: dict[str, Any] = {"hypervisors": items}
    more = next_link(request, "os-hypervisors", items, limit) if version(request) >= "2.33" else []
    if more:
        body["hypervisors_links"] = more
    return json_response(body)


@router.get("/os-hypervisors")
async def list_hypervisors(request: Request) -> Response:
    enforce(request, "os_compute_api:os-hypervisors:list", {})
    return await _list_hypervisors(request, detail=False)


@router.get("/os-hypervisors/detail")
async def list_hypervisors_detail(request: Request) -> Response:
    enforce(request, "os_compute_api:os-hypervisors:list-detail", {})
    return await _list_hypervisors(request, detail=True)


@router.get("/os-hypervisors/statistics")
async def hypervisor_statistics(request: Request) -> Response:
    enforce(request, "os_compute_api:os-hypervisors:statistics", {})
    if version(request) >= "2.88":
        raise NotFound("The hypervisor statistics API is gone since microversion 2.88.")
    async with state(request).db.session(write=False) as session:
        nodes = (await session.scalars(select(m.ComputeNode))).all()
        usage = await _node_usage(session)
    stats = dict.fromkeys(("count", "vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "free_ram_mb",
                           "local_gb", "local_gb_used", "free_disk_gb", "disk_available_least", "running_vms",
                           "current_workload"), 0)
    for node in nodes:
        vcpus, ram, disk, running = usage.get(node.id, (0, 0, 0, 0))
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


@router.get("/os-hypervisors/{pattern}/search")
async def search_hypervisors(request: Request, pattern: str) -> Response:
    enforce(request, "os_compute_api:os-hypervisors:search", {})
    if version(request) >= "2.53":
        raise NotFound("Use GET /os-hypervisors?hypervisor_hostname_pattern= since microversion 2.53.")
    return await _list_hypervisors(request, detail=False, pattern=pattern)


@router.get("/os-hypervisors/{pattern}/servers")
async def hypervisor_servers(request: Request, pattern: str) -> Response:
    enforce(request, "os_compute_api:os-hypervisors:servers", {})
    if version(request) >= "2.53":
        raise NotFound("Use GET /os-hypervisors?hypervisor_hostname_pattern=&with_servers=true since "
                       "microversion 2.53.")
    return await _list_hypervisors(request, detail=False, pattern=pattern, with_servers=True)


async def _node(session: Any, request: Request, hypervisor_id: str) -> m.ComputeNode:
    uuids = version(request) >= "2.53"
    if uuids and not is_uuid(hypervisor_id):
        raise BadRequest(f"Invalid uuid {hypervisor_id}")
    if not uuids and not hypervisor_id.isdigit():
        raise BadRequest(f"Invalid ID {hypervisor_id}")
    column = m.ComputeNode.uuid if uuids else m.ComputeNode.id
    node = await session.scalar(select(m.ComputeNode).where(column == (hypervisor_id if uuids else
                                                                       int(hypervisor_id))))
    if node is None:
        raise NotFound(f"Hypervisor with ID '{hypervisor_id}' could not be found.")
    return node


@router.get("/os-hypervisors/{hypervisor_id}/uptime")
async def hypervisor_uptime(request: Request, hypervisor_id: str) -> Response:
    enforce(request, "os_compute_api:os-hypervisors:uptime", {})
    async with state(request).db.session(write=False) as session:
        await _node(session, request, hypervisor_id)
    # the fake driver has no host of its own to report on; Nova answers 501 for such drivers (the CLI expects it)
    raise error_for_status(501, "Virt driver does not implement host uptime function.")


@router.get("/os-hypervisors/{hypervisor_id}")
async def show_hypervisor(request: Request, hypervisor_id: str) -> Response:
    enforce(request, "os_compute_api:os-hypervisors:show", {})
    with_servers = version(request) >= "2.53" and bool(query_bool(request, "with_servers"))
    async with state(request).db.session(write=False) as session:
        node = await _node(session, request, hypervisor_id)
        service = (await _compute_services(session)).get(node.host)
        usage = (await _node_usage(session)).get(node.id, (0, 0, 0, 0))
        servers = (await _servers_by_host(session, [node.host]))[node.host] if with_servers else None
    return json_response({"hypervisor": _hypervisor_view(request, node, service, usage, True, servers)})


@router.get("/os-aggregates")
async def list_aggregates(request: Request) -> Response:
    """pocketstack has no host aggregates (zones come from each compute service's availability_zone), so the list
    is truthfully empty; `openstack hypervisor show` reads it to name a host's aggregates."""
    enforce(request, "os_compute_api:os-aggregates:index", {})
    return json_response({"aggregates": []})


# ----- os-services ------------------------------------------------------------------------------------------
def _service_view(request: Request, service: m.ComputeService) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": service.uuid if version(request) >= "2.53" else service.id, "binary": service.binary,
        "host": service.host, "zone": _zone(service), "status": "disabled" if service.disabled else "enabled",
        "state": "up" if is_up(request, service) else "down", "disabled_reason": service.disabled_reason,
        "updated_at": isotime_micro(service.updated_at),
    }
    if version(request) >= "2.11":
        body["forced_down"] = service.forced_down
    return body


@router.get("/os-services")
async def list_services(request: Request) -> Response:
    enforce(request, "os_compute_api:os-services:list", {})
    query = select(m.ComputeService).order_by(m.ComputeService.id)
    if request.query_params.get("host"):
        query = query.where(m.ComputeService.host == request.query_params["host"])
    if request.query_params.get("binary"):
        query = query.where(m.ComputeService.binary == request.query_params["binary"])
    async with state(request).db.session(write=False) as session:
        rows = (await session.scalars(query)).all()
    return json_response({"services": [_service_view(request, s) for s in rows]})


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


@router.put("/os-services/{service_id}")
async def update_service(request: Request, service_id: str) -> Response:
    enforce(request, "os_compute_api:os-services:update", {})
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
    async with state(request).db.session(write=True) as session:
        service = await session.scalar(select(m.ComputeService).where(m.ComputeService.uuid == service_id))
        if service is None:
            raise NotFound(f"Service {service_id} could not be found.")
        if body.forced_down is not None and service.binary != COMPUTE:
            raise BadRequest(f"Updating 'forced_down' is only supported for the {COMPUTE} service.")
        if body.status is not None and service.binary != COMPUTE:
            raise BadRequest(f"Updating the status is only supported for the {COMPUTE} service.")
        if body.status == "disabled":
            service.disabled, service.disabled_reason = True, body.disabled_reason
        elif body.status == "enabled":
            service.disabled, service.disabled_reason = False, None
        if body.forced_down is not None:
            service.forced_down = body.forced_down
        service.updated_at = utcnow()
        return json_response({"service": _service_view(request, service)})


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
    async with state(request).db.session(write=True) as session:
        service = await session.scalar(select(m.ComputeService).where(
            m.ComputeService.host == body.host, m.ComputeService.binary == body.binary))
        if service is None:
            raise NotFound(f"Service {body.binary} on host {body.host} could not be found.")
        result: dict[str, Any] = {"host": service.host, "binary": service.binary}
        if action == "force-down":
            service.forced_down = bool(body.forced_down)
            result["forced_down"] = service.forced_down
        else:
            service.disabled = action != "enable"
            service.disabled_reason = body.disabled_reason if action == "disable-log-reason" else None
            result["status"] = "disabled" if service.disabled else "enabled"
            if action == "disable-log-reason":
                result["disabled_reason"] = service.disabled_reason
        service.updated_at = utcnow()
    return json_response({"service": result})


@router.delete("/os-services/{service_id}")
async def delete_service(request: Request, service_id: str) -> Response:
    enforce(request, "os_compute_api:os-services:delete", {})
    uuids = version(request) >= "2.53"
    if (uuids and not is_uuid(service_id)) or (not uuids and not service_id.isdigit()):
        raise BadRequest(f"Invalid service id {service_id}")
    async with state(request).db.session(write=True) as session:
        column = m.ComputeService.uuid if uuids else m.ComputeService.id
        service = await session.scalar(select(m.ComputeService).where(
            column == (service_id if uuids else int(service_id))))
        if service is None:
            raise NotFound(f"Service {service_id} could not be found.")
        if service.binary == COMPUTE:
            hosting = await session.scalar(select(func.count()).select_from(m.Instance).where(
                m.Instance.host == service.host, m.Instance.deleted.is_(False)))
            if hosting:
                raise Conflict("Unable to delete compute service that is hosting instances. Migrate or delete "
                               "the instances first.")
            await session.execute(delete(m.ComputeNode).where(m.ComputeNode.host == service.host))
        await session.delete(service)
    return Response(status_code=204)

