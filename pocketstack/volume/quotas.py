"""Block storage quotas: configured defaults, per-project overrides, usage counted from the volume database."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from pocketstack.common.errors import BadRequest, PayloadTooLarge
from pocketstack.settings import Settings
from pocketstack.volume import models as m

RESOURCES = ("volumes", "snapshots", "gigabytes", "per_volume_gigabytes", "backups", "backup_gigabytes", "groups")
COUNTED = ("volumes", "snapshots", "gigabytes")
DEFAULT_CLASS = "default"


def _per_type(session: Session) -> dict[str, str]:
    """`volumes_NAME`, `snapshots_NAME` and `gigabytes_NAME` of every volume type -> the type's name."""
    names = session.scalars(select(m.VolumeType.name)).all()
    return {f"{resource}_{name}": name for name in names for resource in COUNTED}


def resources(session: Session) -> tuple[str, ...]:
    """The quota resources: the fixed ones and the three of each volume type, as Cinder's quota sets hold them."""
    return RESOURCES + tuple(_per_type(session))


def class_limits(session: Session, settings: Settings, class_name: str = DEFAULT_CLASS) -> dict[str, int]:
    """A quota class's limits: its rows over the configured defaults (per-type resources: -1, unlimited)."""
    limits = {resource: getattr(settings.volume, f"quota_{resource}") for resource in RESOURCES}
    limits.update(dict.fromkeys(_per_type(session), -1))
    for row in session.scalars(select(m.QuotaClass).where(m.QuotaClass.class_name == class_name)).all():
        if row.resource in limits:
            limits[row.resource] = row.hard_limit
    return limits


def project_limits(session: Session, settings: Settings, project_id: str) -> dict[str, int]:
    """The limits in force for a project (-1: unlimited): its own, else the default class's."""
    limits = class_limits(session, settings)
    for row in session.scalars(select(m.Quota).where(m.Quota.project_id == project_id)).all():
        if row.resource in limits:
            limits[row.resource] = row.hard_limit
    return limits


def usage(session: Session, project_id: str) -> dict[str, int]:
    """Volumes, snapshots and their gigabytes (volume sizes plus snapshot sizes, as Cinder counts them), in all
    and per volume type."""
    used = dict.fromkeys(_per_type(session), 0)
    totals = dict.fromkeys(COUNTED, 0)
    for name, count, size in session.execute(
            select(m.VolumeType.name, func.count(), func.coalesce(func.sum(m.Volume.size), 0))
            .join(m.VolumeType, m.VolumeType.id == m.Volume.volume_type_id)
            .where(m.Volume.project_id == project_id).group_by(m.VolumeType.name)).all():
        used[f"volumes_{name}"], used[f"gigabytes_{name}"] = int(count), int(size)
        totals["volumes"] += int(count)
        totals["gigabytes"] += int(size)
    for name, count, size in session.execute(
            select(m.VolumeType.name, func.count(), func.coalesce(func.sum(m.Snapshot.volume_size), 0))
            .join(m.Volume, m.Volume.id == m.Snapshot.volume_id)
            .join(m.VolumeType, m.VolumeType.id == m.Volume.volume_type_id)
            .where(m.Snapshot.project_id == project_id).group_by(m.VolumeType.name)).all():
        used[f"snapshots_{name}"] = int(count)
        used[f"gigabytes_{name}"] = used.get(f"gigabytes_{name}", 0) + int(size)
        totals["snapshots"] += int(count)
        totals["gigabytes"] += int(size)
    return {**used, **totals}


def check(session: Session, settings: Settings, project_id: str, *, volumes: int = 0, snapshots: int = 0,
          gigabytes: int = 0, volume_size: int | None = None, volume_type_id: str | None = None) -> None:
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
    names = [""]
    if volume_type_id is not None:
        vtype = session.get(m.VolumeType, volume_type_id)
        names += [f"_{vtype.name}"] if vtype is not None else []
    for suffix in names:  # the project's totals, then those of the volume type
        volumes_key, snapshots_key, gigabytes_key = (f"{r}{suffix}" for r in COUNTED)
        limit = {key: limits.get(key, -1) for key in (volumes_key, snapshots_key, gigabytes_key)}
        if volumes and 0 <= limit[volumes_key] < used.get(volumes_key, 0) + volumes:
            raise PayloadTooLarge(f"VolumeLimitExceeded: Maximum number of volumes allowed ({limit[volumes_key]}) "
                                  f"exceeded for quota '{volumes_key}'.")
        if snapshots and 0 <= limit[snapshots_key] < used.get(snapshots_key, 0) + snapshots:
            raise PayloadTooLarge(f"SnapshotLimitExceeded: Maximum number of snapshots allowed "
                                  f"({limit[snapshots_key]}) exceeded for quota '{snapshots_key}'.")
        if gigabytes and 0 <= limit[gigabytes_key] < used.get(gigabytes_key, 0) + gigabytes:
            raise PayloadTooLarge(f"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
                                  f"{gigabytes_key} quota. Requested {gigabytes}G, quota is {limit[gigabytes_key]}G "
                                  f"and {used.get(gigabytes_key, 0)}G has been consumed.")
