"""Compute quotas: configured defaults, per-project overrides in the `quotas` table."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from pocketstack.compute import models as m
from pocketstack.settings import Settings

RESOURCES = ("instances", "cores", "ram", "key_pairs", "server_groups", "server_group_members", "metadata_items")


def default_limits(settings: Settings) -> dict[str, int]:
    cfg = settings.compute
    return {resource: getattr(cfg, f"quota_{resource}") for resource in RESOURCES}


async def project_limits(session: AsyncSession, settings: Settings, project_id: str) -> dict[str, int]:
    """The limits in force for a project (-1: unlimited)."""
    return await session.run_sync(project_limits_sync, settings, project_id)


def project_limits_sync(session: Session, settings: Settings, project_id: str) -> dict[str, int]:
    """`project_limits` for synchronous code (`Database.run` transactions)."""
    limits = default_limits(settings)
    for row in session.scalars(select(m.Quota).where(m.Quota.project_id == project_id)).all():
        if row.resource in limits:
            limits[row.resource] = row.hard_limit
    return limits
