"""The volume services' rows: `os-services`, the scheduler's pools, backend capabilities, availability zones."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.errors import NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.settings import Settings
from pocketstack.volume import models as m
from pocketstack.volume import scheduler


async def list_services(db: Database, host: str | None, binary: str | None) -> list[m.Service]:
    query = select(m.Service).order_by(m.Service.binary, m.Service.host)
    if host:  # a host names its backends too (`vm` matches `vm@file`), as Cinder's host filter does
        query = query.where((m.Service.host == host) | m.Service.host.like(f"{host}@%")
                            | m.Service.host.like(f"{host}#%"))
    if binary:
        query = query.where(m.Service.binary == binary)
    return await db.run(lambda s: list(s.scalars(query).all()), write=False)


async def set_disabled(db: Database, host: str, binary: str, disabled: bool, reason: str | None) -> m.Service:
    """Enable or disable the service `binary` on `host` (404 when there is none)."""
    def write(session: Session) -> m.Service:
        svc = session.scalar(select(m.Service).where(m.Service.host == host, m.Service.binary == binary))
        if svc is None:
            raise NotFound(f"Service {binary} on host {host} could not be found.")
        svc.disabled, svc.disabled_reason, svc.updated_at = disabled, reason, utcnow()
        return svc
    return await db.run(write, write=True)


async def volume_services(db: Database) -> list[m.Service]:
    """The services that hold volumes (one per backend)."""
    query = select(m.Service).where(m.Service.binary == scheduler.VOLUME_BINARY)
    return await db.run(lambda s: list(s.scalars(query).all()), write=False)


async def pools(db: Database, settings: Settings) -> list[tuple[scheduler.Pool, m.Service]]:
    """Each backend's pool (capacity, allocation) with its service row."""
    def read(session: Session) -> list[tuple[scheduler.Pool, m.Service]]:
        services = {s.host: s for s in session.scalars(select(m.Service).where(
            m.Service.binary == scheduler.VOLUME_BINARY)).all()}
        return [(pool, services[pool.service]) for pool in scheduler.pools(session, settings)]
    return await db.run(read, write=False)


async def backend(db: Database, host: str) -> m.Service:
    """The volume service of the backend `host@backend` (404 when there is none)."""
    def read(session: Session) -> m.Service:
        svc = session.scalar(select(m.Service).where(m.Service.host == host,
                                                     m.Service.binary == scheduler.VOLUME_BINARY))
        if svc is None:
            raise NotFound(f"Capabilities of host {host} could not be found.")
        return svc
    return await db.run(read, write=False)


def _usage(session: Session, host: str) -> list[tuple[str, int, int, int, int]]:
    """(project, volumes, their GB, snapshots, their GB) of the volumes on a backend (`host@backend#pool`)."""
    on_host = (m.Volume.host == host) | m.Volume.host.like(f"{host}#%")
    volumes = dict(((p, (n, gb)) for p, n, gb in session.execute(
        select(m.Volume.project_id, func.count(), func.coalesce(func.sum(m.Volume.size), 0))
        .where(on_host).group_by(m.Volume.project_id)).all()))
    snapshots = dict(((p, (n, gb)) for p, n, gb in session.execute(
        select(m.Snapshot.project_id, func.count(), func.coalesce(func.sum(m.Snapshot.volume_size), 0))
        .join(m.Volume, m.Volume.id == m.Snapshot.volume_id).where(on_host)
        .group_by(m.Snapshot.project_id)).all()))
    return [(p, *volumes.get(p, (0, 0)), *snapshots.get(p, (0, 0))) for p in sorted(set(volumes) | set(snapshots))]


async def host_usage(db: Database, host: str) -> list[tuple[str, int, int, int, int]] | None:
    """Per project, the volume use on an enabled cinder-volume backend; None when there is no such backend."""
    def read(session: Session) -> list[tuple[str, int, int, int, int]] | None:
        svc = session.scalar(select(m.Service).where(m.Service.host == host,
                                                     m.Service.binary == scheduler.VOLUME_BINARY))
        return None if svc is None or svc.disabled else _usage(session, host)
    return await db.run(read, write=False)
