"""Compute quotas: configured defaults, per-project overrides in the `quotas` table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from pocketstack.common.config import Settings
from pocketstack.compute import models as m

RESOURCES = ("instances", "cores", "ram", "key_pairs", "server_groups", "server_group_members", "metadata_items")


def default_limits(settings: Settings) -> dict[str, int]:
    cfg = settings.compute
    return {resource: getattr(cfg, f"quota_{resource}") for resource in RESOURCES}


async def project_limits(session: Any, settings: Settings, project_id: str) -> dict[str, int]:
    """The limits in force for a project (-1: unlimited)."""
    limits = default_limits(settings)
    for row in (await session.scalars(select(m.Quota).where(m.Quota.project_id == project_id))).all():
        if row.resource in limits:
            limits[row.resource] = row.hard_limit
    return limits
