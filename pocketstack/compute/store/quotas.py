"""Compute quotas: the per-project overrides in the `quotas` table over the configured defaults, and what a project
holds of each resource."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest
from pocketstack.compute import models as m
from pocketstack.compute.quotas import RESOURCES, default_limits
from pocketstack.compute.store.instances import count_usage
from pocketstack.settings import Settings


def project_limits_sync(session: Session, settings: Settings, project_id: str) -> dict[str, int]:
    """The limits in force for a project (-1: unlimited), inside a `Database.run` transaction."""
    limits = default_limits(settings)
    for row in session.scalars(select(m.Quota).where(m.Quota.project_id == project_id)).all():
        if row.resource in limits:
            limits[row.resource] = row.hard_limit
    return limits


def project_usage(session: Session, project_id: str, user_id: str | None) -> dict[str, int]:
    """What a project holds of every quota resource (key pairs count per user, as Nova counts them)."""
    used = {resource: 0 for resource in RESOURCES}
    used.update(count_usage(session, project_id))
    used["server_groups"] = int(session.scalar(select(func.count()).select_from(m.ServerGroup).where(
        m.ServerGroup.project_id == project_id)) or 0)
    if user_id:
        used["key_pairs"] = int(session.scalar(select(func.count()).select_from(m.KeyPair).where(
            m.KeyPair.user_id == user_id)) or 0)
    return used


class QuotaStore:
    """The `quotas` rows and the usage they are checked against."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def limits(self, project_id: str) -> dict[str, int]:
        return await self.db.run(lambda s: project_limits_sync(s, self.settings, project_id), write=False)

    async def limits_and_usage(self, project_id: str, user_id: str | None) -> tuple[dict[str, int], dict[str, int]]:
        """The limits of a project and its usage (key pairs of `user_id`, none counted when None)."""
        return await self.db.run(lambda s: (project_limits_sync(s, self.settings, project_id),
                                            project_usage(s, project_id, user_id)), write=False)

    async def update(self, project_id: str, wanted: dict[str, int], *, force: bool) -> dict[str, int]:
        """Set the project's limits; unless `force`, 400 when one is below what the project already uses."""
        def write(session: Session) -> dict[str, int]:
            if not force:
                used = project_usage(session, project_id, None)
                for resource, limit in wanted.items():
                    if 0 <= limit < used[resource]:
                        raise BadRequest(f"Quota limit {limit} for {resource} must be greater than or equal to "
                                         f"already used and reserved {used[resource]}.")
            for resource, limit in wanted.items():
                row = session.get(m.Quota, (project_id, resource))
                if row is None:
                    session.add(m.Quota(project_id=project_id, resource=resource, hard_limit=limit))
                else:
                    row.hard_limit = limit
            session.flush()
            return project_limits_sync(session, self.settings, project_id)

        return await self.db.run(write, write=True)

    async def delete(self, project_id: str) -> None:
        """Back to the defaults: drop the project's overrides."""
        await self.db.run(lambda s: s.execute(delete(m.Quota).where(m.Quota.project_id == project_id)),
                                 write=True)
