"""Block storage quotas: configured defaults, per-project overrides, usage counted from the volume database."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from pocketstack.common.errors import BadRequest, PayloadTooLarge
from pocketstack.settings import Settings
from pocketstack.volume import models as m

RESOURCES = ("volumes", "snapshots", "gigabytes", "per_volume_gigabytes", "backups", "backup_gigabytes", "groups")
COUNTED = ("volumes", "snapshots", "gigabytes")


def default_limits(settings: Settings) -> dict[str, int]:
    return {resource: getattr(settings.volume, f"quota_{resource}") for resource in RESOURCES}


def project_limits(session: Session, settings: Settings, project_id: str) -> dict[str, int]:
    """The limits in force for a project (-1: unlimited)."""
    limits = default_limits(settings)
    for row in session.scalars(select(m.Quota).where(m.Quota.project_id == project_id)).all():
        if row.resource in limits:
            limits[row.resource] = row.hard_limit
    return limits


def usage(session: Session, project_id: str) -> dict[str, int]:
    """Volumes, snapshots and their gigabytes (volume sizes plus snapshot sizes, as Cinder counts them)."""
    volumes, volume_gb = session.execute(select(func.count(), func.coalesce(func.sum(m.Volume.size), 0)).where(
        m.Volume.project_id == project_id)).one()
    snapshots, snapshot_gb = session.execute(select(func.count(), func.coalesce(func.sum(m.Snapshot.volume_size), 0))
                                             .where(m.Snapshot.project_id == project_id)).one()
    return {"volumes": int(volumes), "snapshots": int(snapshots), "gigabytes": int(volume_gb) + int(snapshot_gb)}


def check(session: Session, settings: Settings, project_id: str, *, volumes: int = 0, snapshots: int = 0,
          gigabytes: int = 0, volume_size: int | None = None) -> None:
    """Raise Cinder's over-limit errors (413; 400 for the per-volume size) unless the request fits the quota.

    Call it inside the write transaction that adds the resources, so concurrent requests cannot both fit: SQLite
    serialises write transactions; on PostgreSQL a transaction-scoped advisory lock on the project does.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"volume-quota:{project_id}"})
    limits = project_limits(session, settings, project_id)
    per_volume = limits["per_volume_gigabytes"]
    if volume_size is not None and per_volume >= 0 and volume_size > per_volume:
        raise BadRequest(f"VolumeSizeExceedsLimit: Requested volume size {volume_size}G is larger than maximum "
                         f"allowed limit {per_volume}G.")
    used = usage(session, project_id)
    if volumes and 0 <= limits["volumes"] < used["volumes"] + volumes:
        raise PayloadTooLarge(f"VolumeLimitExceeded: Maximum number of volumes allowed ({limits['volumes']}) "
                              "exceeded for quota 'volumes'.")
    if snapshots and 0 <= limits["snapshots"] < used["snapshots"] + snapshots:
        raise PayloadTooLarge(f"SnapshotLimitExceeded: Maximum number of snapshots allowed ({limits['snapshots']}) "
                              "exceeded for quota 'snapshots'.")
    if gigabytes and 0 <= limits["gigabytes"] < used["gigabytes"] + gigabytes:
        raise PayloadTooLarge(f"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
                              f"gigabytes quota. Requested {gigabytes}G, quota is {limits['gigabytes']}G and "
                              f"{used['gigabytes']}G has been consumed.")
