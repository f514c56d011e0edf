"""The compute hosts as the admin API reads and changes them: service rows (`os-services`, availability zones)
and compute nodes with the usage their allocations claim (`os-hypervisors`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m

COMPUTE = "nova-compute"

# the row types the API's views render
ComputeNode = m.ComputeNode
ComputeService = m.ComputeService
Instance = m.Instance

Usage = tuple[int, int, int, int]  # vcpus, memory MiB, disk GiB, servers claimed on a node
NO_USAGE: Usage = (0, 0, 0, 0)


@dataclass
class Hypervisors:
    """Compute nodes with what their views need: the compute services by host, usage by node id, and (when
    asked) the live servers by host."""

    nodes: list[m.ComputeNode]
    services: dict[str, m.ComputeService]
    usage: dict[int, Usage]
    servers: dict[str, list[m.Instance]] = field(default_factory=dict)


def node_usage(session: Session) -> dict[int, Usage]:
    """node id -> (vcpus, memory MiB, disk GiB, servers) claimed by allocations."""
    rows = session.execute(select(
        m.Allocation.node_id, func.sum(m.Allocation.vcpus), func.sum(m.Allocation.memory_mb),
        func.sum(m.Allocation.disk_gb), func.count()).group_by(m.Allocation.node_id))
    return {r[0]: (int(r[1] or 0), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0)) for r in rows.all()}


def compute_services(session: Session) -> dict[str, m.ComputeService]:
    """The nova-compute service rows by host."""
    return {s.host: s for s in session.scalars(select(m.ComputeService).where(
        m.ComputeService.binary == COMPUTE)).all()}


def _servers_by_host(session: Session, hosts: list[str]) -> dict[str, list[m.Instance]]:
    result: dict[str, list[m.Instance]] = {h: [] for h in hosts}
    if hosts:
        for inst in session.scalars(select(m.Instance).where(
                m.Instance.host.in_(hosts), m.Instance.deleted.is_(False)).order_by(m.Instance.created_at)).all():
            result[inst.host].append(inst)
    return result


def _node_page(session: Session, pattern: str | None, marker: str | None, by_uuid: bool, limit: int,
               with_servers: bool) -> Hypervisors:
    query = select(m.ComputeNode).order_by(m.ComputeNode.id)
    if pattern is not None:
        query = query.where(m.ComputeNode.hypervisor_hostname.contains(pattern, autoescape=True))
    if marker is not None:
        column = m.ComputeNode.uuid if by_uuid else m.ComputeNode.id
        marker_node = session.scalar(select(m.ComputeNode).where(column == marker))
        if marker_node is None:
            raise BadRequest(f"marker [{marker}] not found")
        query = query.where(m.ComputeNode.id > marker_node.id)
    nodes = list(session.scalars(query.limit(limit)).all())
    servers = _servers_by_host(session, [n.host for n in nodes]) if with_servers else {}
    return Hypervisors(nodes, compute_services(session), node_usage(session), servers)


def _node(session: Session, node_id: str, by_uuid: bool, with_servers: bool) -> Hypervisors:
    column = m.ComputeNode.uuid if by_uuid else m.ComputeNode.id
    node = session.scalar(select(m.ComputeNode).where(column == (node_id if by_uuid else int(node_id))))
    if node is None:
        raise NotFound(f"Hypervisor with ID '{node_id}' could not be found.")
    servers = _servers_by_host(session, [node.host]) if with_servers else {}
    return Hypervisors([node], compute_services(session), node_usage(session), servers)


def _delete_service(session: Session, service_id: str, by_uuid: bool) -> None:
    column = m.ComputeService.uuid if by_uuid else m.ComputeService.id
    service = session.scalar(select(m.ComputeService).where(column == (service_id if by_uuid else int(service_id))))
    if service is None:
        raise NotFound(f"Service {service_id} could not be found.")
    if service.binary == COMPUTE:
        hosting = session.scalar(select(func.count()).select_from(m.Instance).where(
            m.Instance.host == service.host, m.Instance.deleted.is_(False)))
        if hosting:
            raise Conflict("Unable to delete compute service that is hosting instances. Migrate or delete "
                           "the instances first.")
        session.execute(delete(m.ComputeNode).where(m.ComputeNode.host == service.host))
    session.delete(service)


class HostStore:
    """Service rows and compute nodes. A node or service is named by its uuid (`by_uuid`, since 2.53) or by its
    integer id as a string of digits."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def services(self, host: str | None = None, binary: str | None = None) -> list[m.ComputeService]:
        """The service rows by id, of `host` and `binary` when given."""
        query = select(m.ComputeService).order_by(m.ComputeService.id)
        if host:
            query = query.where(m.ComputeService.host == host)
        if binary:
            query = query.where(m.ComputeService.binary == binary)
        return await self.db.run(lambda s: list(s.scalars(query).all()), write=False)

    async def hypervisors(self, *, pattern: str | None, marker: str | None, by_uuid: bool, limit: int,
                          with_servers: bool) -> Hypervisors:
        """A page of nodes by id (hostname containing `pattern`, after the node `marker` names by uuid or id;
        400 for an unknown marker)."""
        return await self.db.run(lambda s: _node_page(s, pattern, marker, by_uuid, limit, with_servers),
                                 write=False)

    async def hypervisor(self, node_id: str, *, by_uuid: bool, with_servers: bool) -> Hypervisors:
        """One node (404 when there is none) as a one-node `Hypervisors`."""
        return await self.db.run(lambda s: _node(s, node_id, by_uuid, with_servers), write=False)

    async def node_traits(self, host: str) -> frozenset[str] | None:
        """The traits (driver capabilities) the node of `host` reported; None when it reported none."""
        query = select(m.ComputeNode.traits).where(m.ComputeNode.host == host)
        traits = await self.db.run(lambda s: s.scalar(query), write=False)
        return frozenset(traits) if traits is not None else None

    async def all_nodes(self) -> tuple[list[m.ComputeNode], dict[int, Usage]]:
        """Every node and the usage by node id (the statistics)."""
        return await self.db.run(lambda s: (list(s.scalars(select(m.ComputeNode)).all()), node_usage(s)),
                                 write=False)

    async def update_service(self, service_uuid: str, changes: dict[str, Any]) -> m.ComputeService:
        """Set `changes` (disabled, disabled_reason, forced_down) on a service; only nova-compute's status and
        forced_down may change (400 otherwise)."""

        def update(session: Session) -> m.ComputeService:
            service = session.scalar(select(m.ComputeService).where(m.ComputeService.uuid == service_uuid))
            if service is None:
                raise NotFound(f"Service {service_uuid} could not be found.")
            if "forced_down" in changes and service.binary != COMPUTE:
                raise BadRequest(f"Updating 'forced_down' is only supported for the {COMPUTE} service.")
            if "disabled" in changes and service.binary != COMPUTE:
                raise BadRequest(f"Updating the status is only supported for the {COMPUTE} service.")
            for name, value in changes.items():
                setattr(service, name, value)
            service.updated_at = utcnow()
            return service

        return await self.db.run(update, write=True)

    async def update_service_at(self, host: str, binary: str, changes: dict[str, Any]) -> m.ComputeService:
        """Set `changes` on the service `binary` of `host` (the pre-2.53 addressing)."""

        def update(session: Session) -> m.ComputeService:
            service = session.scalar(select(m.ComputeService).where(m.ComputeService.host == host,
                                                                    m.ComputeService.binary == binary))
            if service is None:
                raise NotFound(f"Service {binary} on host {host} could not be found.")
            for name, value in changes.items():
                setattr(service, name, value)
            service.updated_at = utcnow()
            return service

        return await self.db.run(update, write=True)

    async def host_detail(self, host: str) -> tuple[m.ComputeNode, Usage, list[m.Instance]]:
        """The node of a compute host, what its allocations claim and its live servers (`os-hosts/{host}`; 404
        when the host has no node)."""
        def read(session: Session) -> tuple[m.ComputeNode, Usage, list[m.Instance]]:
            node = session.scalar(select(m.ComputeNode).where(m.ComputeNode.host == host))
            if node is None:
                raise NotFound(f"Compute host {host} could not be found.")
            return node, node_usage(session).get(node.id, NO_USAGE), _servers_by_host(session, [host])[host]

        return await self.db.run(read, write=False)

    async def delete_service(self, service_id: str, *, by_uuid: bool) -> None:
        """Delete a service; a nova-compute one takes its nodes along, and only when it hosts no server (409)."""
        await self.db.run(lambda s: _delete_service(s, service_id, by_uuid), write=True)
