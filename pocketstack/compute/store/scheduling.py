"""The scheduler's SQL: the candidate hosts of a request (resources, service state, zone and group placement
decided in the database, a bounded page of the best-fitting ones returned, as placement's allocation candidates),
the hosts a server group's members hold claims on, and the atomic claim of a node's resources (steps 10 and 11)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute.store.aggregates import aggregate_zone, host_aggregates

COMPUTE = "nova-compute"

NodeUsage = tuple[Any, Any, Any]  # summed vcpus, memory MiB, disk GiB claimed on a node (None-able sums)


@dataclass
class HostRows:
    """What host states are made of: nodes, nova-compute services by host, claimed usage by node id, each host's
    availability zone and its aggregates' metadata (key -> values)."""

    nodes: list[m.ComputeNode]
    services: dict[str, m.ComputeService]
    usage: dict[int, NodeUsage]
    zones: dict[str, str]
    aggregate_metadata: dict[str, dict[str, set[str]]]


@dataclass
class CandidateQuery:
    """What the database decides about a request before the Python filters see a host: the flavor's resources
    (Core/Ram/DiskFilter), a live enabled service (ComputeFilter), the zone, the hosts a group policy or an
    earlier attempt excludes, the hosts an affinity group requires; `limit` candidates per page, best first."""

    flavor: dict[str, Any]
    down_after: datetime
    check_service: bool = True
    check_resources: tuple[bool, bool, bool] = (True, True, True)  # vcpus, RAM, disk
    zone: str | None = None
    default_zone: str = "nova"
    excluded: set[str] = field(default_factory=set)
    required: set[str] | None = None
    limit: int = 100
    offset: int = 0


def _zone_condition(session: Session, zone: str, default_zone: str) -> ColumnElement[bool]:
    """Hosts in `zone`: those of aggregates naming it, plus, for a zone no aggregate names, hosts in no zoned
    aggregate whose service is in it (the default zone)."""
    zoned: dict[str, str] = {}
    for host, aggregates in host_aggregates(session).items():
        named = next((z for z in map(aggregate_zone, aggregates) if z), None)
        if named:
            zoned[host] = named
    in_zone = [host for host, named in zoned.items() if named == zone]
    return or_(m.ComputeNode.host.in_(in_zone) if in_zone else false(),
               and_(m.ComputeNode.host.not_in(list(zoned)) if zoned else true(),
                    m.ComputeService.availability_zone == zone))


def _candidate_rows(session: Session, query: CandidateQuery) -> HostRows:
    used = (select(m.Allocation.node_id.label("node_id"), func.sum(m.Allocation.vcpus).label("vcpus"),
                   func.sum(m.Allocation.memory_mb).label("ram"), func.sum(m.Allocation.disk_gb).label("disk"))
            .group_by(m.Allocation.node_id).subquery())
    vcpus_used, ram_used, disk_used = (func.coalesce(c, 0) for c in (used.c.vcpus, used.c.ram, used.c.disk))
    node = m.ComputeNode
    free_ram = (node.memory_mb - node.reserved_host_memory_mb) * node.ram_allocation_ratio - ram_used
    stmt = (select(node, m.ComputeService, vcpus_used, ram_used, disk_used)
            .join(m.ComputeService, and_(m.ComputeService.host == node.host, m.ComputeService.binary == COMPUTE))
            .outerjoin(used, used.c.node_id == node.id))
    flavor = query.flavor
    if query.check_service:
        stmt = stmt.where(m.ComputeService.disabled.is_(False), m.ComputeService.forced_down.is_(False),
                          m.ComputeService.last_seen_up >= query.down_after)
    check_vcpus, check_ram, check_disk = query.check_resources
    if check_vcpus:
        stmt = stmt.where(node.vcpus * node.cpu_allocation_ratio - vcpus_used >= flavor["vcpus"])
    if check_ram:
        stmt = stmt.where(free_ram >= flavor["ram"])
    if check_disk:
        stmt = stmt.where(node.local_gb * node.disk_allocation_ratio - disk_used >= flavor["disk"])
    if query.excluded:
        stmt = stmt.where(node.host.not_in(sorted(query.excluded)))
    if query.required is not None:
        stmt = stmt.where(node.host.in_(sorted(query.required)))
    if query.zone:
        stmt = stmt.where(_zone_condition(session, query.zone, query.default_zone))
    stmt = stmt.order_by(free_ram.desc(), node.id).limit(query.limit).offset(query.offset)
    nodes, services, usage = [], {}, {}
    for row in session.execute(stmt).all():
        nodes.append(row[0])
        services[row[0].host] = row[1]
        usage[row[0].id] = tuple(row[2:])
    hosts = set(services)
    metadata: dict[str, dict[str, set[str]]] = {}
    zones = {host: service.availability_zone for host, service in services.items()}
    for host, aggregates in host_aggregates(session).items():
        if host not in hosts:
            continue
        zone = next((z for z in map(aggregate_zone, aggregates) if z), None)
        if zone:
            zones[host] = zone
        for aggregate in aggregates:
            for item in aggregate.metadata_items:
                metadata.setdefault(host, {}).setdefault(item.key, set()).add(item.value)
    return HostRows(nodes, services, usage, zones, metadata)


def _has_room(session: Session, node: m.ComputeNode, flavor: dict[str, Any]) -> bool:
    used = session.execute(
        select(func.coalesce(func.sum(m.Allocation.vcpus), 0),
               func.coalesce(func.sum(m.Allocation.memory_mb), 0),
               func.coalesce(func.sum(m.Allocation.disk_gb), 0)).where(m.Allocation.node_id == node.id)).one()
    return not (used[0] + flavor["vcpus"] > node.vcpus * node.cpu_allocation_ratio
                or used[1] + flavor["ram"] > (node.memory_mb - node.reserved_host_memory_mb)
                * node.ram_allocation_ratio
                or used[2] + flavor["disk"] > node.local_gb * node.disk_allocation_ratio)


def _claim(session: Session, node_id: int, instance_uuid: str, spec: dict[str, Any]) -> bool:
    node = session.scalar(select(m.ComputeNode).where(m.ComputeNode.id == node_id).with_for_update())
    if node is None:
        return False
    flavor = spec["flavor"]
    if not _has_room(session, node, flavor):
        return False
    group = spec.get("group")
    if group and group.get("policy") == "anti-affinity":
        max_per_host = int(group.get("rules", {}).get("max_server_per_host", 1))
        members_here = session.scalar(
            select(func.count()).select_from(m.Allocation)
            .join(m.ServerGroupMember, m.ServerGroupMember.instance_uuid == m.Allocation.consumer_uuid)
            .where(m.ServerGroupMember.group_uuid == group["uuid"], m.Allocation.node_id == node.id))
        if members_here >= max_per_host:
            return False
    if session.get(m.Allocation, instance_uuid) is not None:
        return False
    session.add(m.Allocation(consumer_uuid=instance_uuid, node_id=node.id, project_id=spec["project_id"],
                             vcpus=flavor["vcpus"], memory_mb=flavor["ram"], disk_gb=flavor["disk"],
                             created_at=utcnow()))
    return True


class SchedulingStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def candidate_rows(self, query: CandidateQuery) -> HostRows:
        """One page of the hosts that fit the query, most free RAM first: their nodes, nova-compute services by
        host, claimed usage by node id, zones and aggregates' metadata by host. Its cost follows the page, not
        the fleet, on the Python side; the database does the per-host arithmetic."""
        return await self.db.run(lambda s: _candidate_rows(s, query), write=False)

    async def group_hosts(self, group_uuid: str) -> list[str]:
        """Hosts of the group's members that hold a claim (one entry per member)."""
        return await self.db.run(lambda s: list(s.scalars(
            select(m.ComputeNode.host).join(m.Allocation, m.Allocation.node_id == m.ComputeNode.id)
            .join(m.ServerGroupMember, m.ServerGroupMember.instance_uuid == m.Allocation.consumer_uuid)
            .where(m.ServerGroupMember.group_uuid == group_uuid)).all()), write=False)

    async def claim(self, node_id: int, instance_uuid: str, spec: dict[str, Any]) -> bool:
        """Write the instance's allocation on the node only if the node still has room (and, for anti-affinity,
        the group room on it), under a lock on the node row.

        Concurrent schedulers (or requests) serialise on the node: SQLite by its write lock, PostgreSQL and
        MariaDB by SELECT ... FOR UPDATE; the check and the insert are one transaction, so no host is overbooked.
        """
        return await self.db.run(lambda s: _claim(s, node_id, instance_uuid, spec), write=True)
