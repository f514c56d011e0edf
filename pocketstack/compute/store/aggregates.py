"""Host aggregates (`aggregates`, their hosts and metadata) and the availability zones they make: a compute host
is in the zone its aggregates' `availability_zone` metadata names, else in its service's own zone."""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m

COMPUTE = "nova-compute"
AZ_KEY = "availability_zone"

Aggregate = m.Aggregate  # the row type the API's views render


def aggregate_zone(aggregate: m.Aggregate) -> str | None:
    return next((item.value for item in aggregate.metadata_items if item.key == AZ_KEY), None)


def aggregate_metadata(aggregate: m.Aggregate) -> dict[str, str]:
    return {item.key: item.value for item in aggregate.metadata_items}


def host_aggregates(session: Session) -> dict[str, list[m.Aggregate]]:
    """host -> the aggregates it is in."""
    result: dict[str, list[m.Aggregate]] = {}
    for aggregate in session.scalars(select(m.Aggregate).order_by(m.Aggregate.id)).all():
        for member in aggregate.hosts:
            result.setdefault(member.host, []).append(aggregate)
    return result


def host_zones(session: Session) -> dict[str, str]:
    """Every compute host's availability zone: its aggregates' zone, else its service's."""
    zones = {s.host: s.availability_zone for s in session.scalars(
        select(m.ComputeService).where(m.ComputeService.binary == COMPUTE)).all()}
    for host, aggregates in host_aggregates(session).items():
        zone = next((z for z in map(aggregate_zone, aggregates) if z), None)
        if zone and host in zones:
            zones[host] = zone
    return zones


def host_zone(session: Session, host: str) -> str | None:
    """One compute host's availability zone (its first zoned aggregate's, else its service's); None: no such
    host. Reads that host's rows only."""
    service_zone = session.scalar(select(m.ComputeService.availability_zone).where(
        m.ComputeService.host == host, m.ComputeService.binary == COMPUTE))
    if service_zone is None:
        return None
    named = session.scalars(
        select(m.AggregateMetadata.value)
        .join(m.AggregateHost, m.AggregateHost.aggregate_id == m.AggregateMetadata.aggregate_id)
        .where(m.AggregateHost.host == host, m.AggregateMetadata.key == AZ_KEY)
        .order_by(m.AggregateMetadata.aggregate_id)).first()
    return named or service_zone


def zone_exists(session: Session, zone: str) -> bool:
    """A zone servers can be placed in: named by an aggregate with hosts, or the zone of a compute service in no
    zoned aggregate."""
    zoned_hosts = (select(m.AggregateHost.host)
                   .join(m.AggregateMetadata, m.AggregateMetadata.aggregate_id == m.AggregateHost.aggregate_id)
                   .where(m.AggregateMetadata.key == AZ_KEY))
    by_aggregate = select(m.AggregateHost.host).join(
        m.AggregateMetadata, m.AggregateMetadata.aggregate_id == m.AggregateHost.aggregate_id).join(
        m.ComputeService, and_(m.ComputeService.host == m.AggregateHost.host, m.ComputeService.binary == COMPUTE)
    ).where(m.AggregateMetadata.key == AZ_KEY, m.AggregateMetadata.value == zone).limit(1)
    if session.scalar(by_aggregate) is not None:
        return True
    by_service = select(m.ComputeService.id).where(
        m.ComputeService.binary == COMPUTE, m.ComputeService.availability_zone == zone,
        m.ComputeService.host.not_in(zoned_hosts)).limit(1)
    return session.scalar(by_service) is not None


def _get(session: Session, aggregate_id: int) -> m.Aggregate:
    aggregate = session.get(m.Aggregate, aggregate_id)
    if aggregate is None:
        raise NotFound(f"Aggregate {aggregate_id} could not be found.")
    return aggregate


def _check_name(session: Session, name: str, own_id: int | None = None) -> None:
    other = session.scalar(select(m.Aggregate).where(m.Aggregate.name == name))
    if other is not None and other.id != own_id:
        raise Conflict(f"Aggregate {name} already exists.")


def _check_zone_of_hosts(session: Session, aggregate: m.Aggregate, zone: str | None,
                         hosts: list[str]) -> None:
    """409 when one of `hosts` is already in another aggregate of a different zone (a host has one zone)."""
    if not zone:
        return
    by_host = host_aggregates(session)
    for host in hosts:
        for other in by_host.get(host, []):
            other_zone = aggregate_zone(other)
            if other.id != aggregate.id and other_zone and other_zone != zone:
                raise Conflict(f"Cannot add host {host} in aggregate {aggregate.id}: it is already in the "
                               f"availability zone {other_zone}.")


def _set_metadata(session: Session, aggregate: m.Aggregate, changes: dict[str, str | None]) -> None:
    if AZ_KEY in changes:
        _check_zone_of_hosts(session, aggregate, changes[AZ_KEY], [h.host for h in aggregate.hosts])
    current = {item.key: item for item in aggregate.metadata_items}
    for key, value in changes.items():
        if value is None:
            if key in current:
                aggregate.metadata_items.remove(current[key])
        elif key in current:
            current[key].value = value
        else:
            aggregate.metadata_items.append(m.AggregateMetadata(key=key, value=value))
    aggregate.updated_at = utcnow()


class AggregateStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self) -> list[m.Aggregate]:
        return await self.db.run(lambda s: list(s.scalars(select(m.Aggregate).order_by(m.Aggregate.id)).all()),
                                 write=False)

    async def get(self, aggregate_id: int) -> m.Aggregate:
        """One aggregate (404 when there is none)."""
        return await self.db.run(lambda s: _get(s, aggregate_id), write=False)

    async def create(self, name: str, zone: str | None) -> m.Aggregate:
        """A new aggregate (409 when the name is taken), in `zone` when given."""
        def write(session: Session) -> m.Aggregate:
            _check_name(session, name)
            aggregate = m.Aggregate(uuid=str(uuidlib.uuid4()), name=name, created_at=utcnow())
            if zone:
                aggregate.metadata_items.append(m.AggregateMetadata(key=AZ_KEY, value=zone))
            session.add(aggregate)
            session.flush()
            _ = aggregate.hosts, aggregate.metadata_items  # loaded for the view, after the session
            return aggregate

        return await self.db.run(write, write=True)

    async def update(self, aggregate_id: int, changes: dict[str, Any]) -> m.Aggregate:
        """Rename an aggregate or change its zone (`availability_zone`: None takes it out of any zone)."""
        def write(session: Session) -> m.Aggregate:
            aggregate = _get(session, aggregate_id)
            if "name" in changes:
                _check_name(session, changes["name"], aggregate.id)
                aggregate.name = changes["name"]
            if AZ_KEY in changes:
                _set_metadata(session, aggregate, {AZ_KEY: changes[AZ_KEY]})
            aggregate.updated_at = utcnow()
            return aggregate

        return await self.db.run(write, write=True)

    async def delete(self, aggregate_id: int) -> None:
        """Delete an empty aggregate (400 while it has hosts, as Nova answers)."""
        def write(session: Session) -> None:
            aggregate = _get(session, aggregate_id)
            if aggregate.hosts:
                raise BadRequest(f"Cannot remove aggregate {aggregate_id}: Host aggregate is not empty")
            session.delete(aggregate)

        await self.db.run(write, write=True)

    async def add_host(self, aggregate_id: int, host: str) -> m.Aggregate:
        """Put a compute host in the aggregate (404 unknown host, 409 already in it or in another zone)."""
        def write(session: Session) -> m.Aggregate:
            aggregate = _get(session, aggregate_id)
            if session.scalar(select(m.ComputeService).where(m.ComputeService.host == host,
                                                             m.ComputeService.binary == COMPUTE)) is None:
                raise NotFound(f"Compute host {host} could not be found.")
            if any(member.host == host for member in aggregate.hosts):
                raise Conflict(f"Aggregate {aggregate_id} already has host {host}.")
            _check_zone_of_hosts(session, aggregate, aggregate_zone(aggregate), [host])
            aggregate.hosts.append(m.AggregateHost(host=host))
            aggregate.updated_at = utcnow()
            return aggregate

        return await self.db.run(write, write=True)

    async def remove_host(self, aggregate_id: int, host: str) -> m.Aggregate:
        """Take a host out of the aggregate (404 when it is not in it)."""
        def write(session: Session) -> m.Aggregate:
            aggregate = _get(session, aggregate_id)
            member = next((h for h in aggregate.hosts if h.host == host), None)
            if member is None:
                raise NotFound(f"Cannot remove host {host} in aggregate {aggregate_id}: not found.")
            aggregate.hosts.remove(member)
            aggregate.updated_at = utcnow()
            return aggregate

        return await self.db.run(write, write=True)

    async def set_metadata(self, aggregate_id: int, changes: dict[str, str | None]) -> m.Aggregate:
        """Merge metadata into the aggregate's (a None value deletes its key)."""
        def write(session: Session) -> m.Aggregate:
            aggregate = _get(session, aggregate_id)
            _set_metadata(session, aggregate, changes)
            return aggregate

        return await self.db.run(write, write=True)

    async def host_zones(self) -> dict[str, str]:
        return await self.db.run(host_zones, write=False)
