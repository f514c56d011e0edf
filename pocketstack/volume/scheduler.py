"""Backend selection (cinder-scheduler's filters and capacity weigher), run by the API inside the write
transaction that creates the volume, so two requests cannot both claim the last free gigabytes of a backend."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pocketstack.common.timeutils import utcnow
from pocketstack.settings import Settings
from pocketstack.volume import models as m

VOLUME_BINARY = "cinder-volume"


class NoValidBackend(Exception):
    """No backend can hold the volume; the message says why."""


@dataclass(frozen=True)
class Pool:
    host: str  # host@backend#pool, the volume's `host`
    service: str  # host@backend
    availability_zone: str
    total_gb: float
    allocated_gb: int
    up: bool
    disabled: bool

    @property
    def free_gb(self) -> float:
        return self.total_gb - self.allocated_gb


def allocated_gb(session: Session, pool_host: str) -> int:
    """Gigabytes provisioned on a pool: its volumes' sizes plus its snapshots' (thick accounting)."""
    volumes = session.scalar(select(func.coalesce(func.sum(m.Volume.size), 0)).where(m.Volume.host == pool_host))
    snapshots = session.scalar(select(func.coalesce(func.sum(m.Snapshot.volume_size), 0)).where(
        m.Snapshot.host == pool_host))
    return int(volumes) + int(snapshots)


def pools(session: Session, settings: Settings, *, lock: bool = False) -> list[Pool]:
    """Every volume backend's pool with its capacity as the database knows it now. With `lock` the backends'
    rows are locked until the transaction ends (SELECT ... FOR UPDATE; SQLite serialises writers anyway), so
    the capacity a claim saw cannot be claimed by another transaction meanwhile."""
    down_after = utcnow() - timedelta(seconds=settings.volume.service_down_time)
    query = select(m.Service).where(m.Service.binary == VOLUME_BINARY).order_by(m.Service.host)
    result = []
    for svc in session.scalars(query.with_for_update() if lock else query).all():
        pool_host = f"{svc.host}#{svc.capabilities.get('pool_name', svc.host.split('@')[-1])}"
        result.append(Pool(host=pool_host, service=svc.host, availability_zone=svc.availability_zone,
                           total_gb=svc.total_capacity_gb, allocated_gb=allocated_gb(session, pool_host),
                           up=svc.last_seen_up is not None and svc.last_seen_up >= down_after,
                           disabled=svc.disabled))
    return result


def pick(session: Session, settings: Settings, size_gb: int, *, availability_zone: str | None = None,
         host: str | None = None) -> str:
    """The pool the volume goes to (the most free space wins); `host` pins it (clones stay with their source).

    Call it in a write transaction; raises NoValidBackend with the reason otherwise.
    """
    candidates = [p for p in pools(session, settings, lock=True) if host is None or p.host == host]
    if not candidates:
        raise NoValidBackend("No valid backend was found: no volume service runs" +
                             (f" for {host}." if host else "."))
    usable = [p for p in candidates if p.up and not p.disabled
              and (availability_zone is None or p.availability_zone == availability_zone)]
    if not usable:
        reason = (f"the backend {host} of the source is down or disabled" if host else
                  "no volume backend is up, enabled and in the requested availability zone")
        raise NoValidBackend(f"No valid backend was found: {reason}.")
    best = max(usable, key=lambda p: p.free_gb)
    if best.free_gb < size_gb:
        raise NoValidBackend(f"No valid backend was found: insufficient free capacity for a {size_gb} GB volume "
                             f"(the most free space on a backend is {max(best.free_gb, 0):g} GB of "
                             f"{best.total_gb:g} GB).")
    return best.host
