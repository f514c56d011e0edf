"""The scheduler's SQL: the rows host states are made of, the hosts a server group's members hold claims on, and
the atomic claim of a node's resources (steps 10 and 11)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute.store.aggregates import host_aggregates, host_zones

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


def _host_rows(session: Session) -> HostRows:
    nodes = list(session.scalars(select(m.ComputeNode)).all())
    services = {s.host: s for s in session.scalars(
        select(m.ComputeService).where(m.ComputeService.binary == COMPUTE)).all()}
    usage = {row[0]: tuple(row[1:]) for row in session.execute(
        select(m.Allocation.node_id, func.sum(m.Allocation.vcpus), func.sum(m.Allocation.memory_mb),
               func.sum(m.Allocation.disk_gb)).group_by(m.Allocation.node_id)).all()}
    metadata: dict[str, dict[str, set[str]]] = {}
    for host, aggregates in host_aggregates(session).items():
        for aggregate in aggregates:
            for item in aggregate.metadata_items:
                metadata.setdefault(host, {}).setdefault(item.key, set()).add(item.value)
    return HostRows(nodes, services, usage, host_zones(session), metadata)


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

    async def host_rows(self) -> HostRows:
        """Every compute node, the nova-compute services by host, the claimed usage by node id, the zones and
        the aggregates' metadata by host."""
        return await self.db.run(_host_rows, write=False)

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
