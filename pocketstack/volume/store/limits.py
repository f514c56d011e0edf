"""Quota sets and the usage they are checked against (the counting itself is `volume/quotas.py`)."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest
from pocketstack.settings import Settings
from pocketstack.volume import models as m
from pocketstack.volume import quotas


async def limits_and_usage(db: Database, settings: Settings, project_id: str) -> tuple[dict[str, int],
                                                                                         dict[str, int]]:
    """The project's limits (its own, else the defaults) and what it uses now."""
    def read(session: Session) -> tuple[dict[str, int], dict[str, int]]:
        return quotas.project_limits(session, settings, project_id), quotas.usage(session, project_id)
    return await db.run(read, write=False)


async def set_limits(db: Database, settings: Settings, project_id: str, changes: dict[str, int]) -> dict[str, int]:
    """Set the project's limits (none below what it already uses); returns all of its limits."""
    def write(session: Session) -> dict[str, int]:
        _known(session, changes)
        used = quotas.usage(session, project_id)
        for resource, limit in changes.items():
            if resource in used and 0 <= limit < used[resource]:
                raise BadRequest(f"Invalid input received: Quota limit {limit} for {resource} must be equal or "
                                 f"greater than existing resources. Current usage is {used[resource]}.")
            row = session.get(m.Quota, (project_id, resource))
            if row is None:
                session.add(m.Quota(project_id=project_id, resource=resource, hard_limit=limit))
            else:
                row.hard_limit = limit
        session.flush()
        return quotas.project_limits(session, settings, project_id)
    return await db.run(write, write=True)


def _known(session: Session, changes: dict[str, int]) -> None:
    unknown = sorted(set(changes) - set(quotas.resources(session)))
    if unknown:
        raise BadRequest(f"Invalid input received: Bad key(s) in quota set: {', '.join(unknown)}.")


async def default_limits(db: Database, settings: Settings) -> dict[str, int]:
    """What a project without its own limits gets: the default quota class over the configuration."""
    return await db.run(lambda s: quotas.class_limits(s, settings), write=False)


async def class_limits(db: Database, settings: Settings, class_name: str) -> dict[str, int]:
    return await db.run(lambda s: quotas.class_limits(s, settings, class_name), write=False)


async def set_class_limits(db: Database, settings: Settings, class_name: str,
                           changes: dict[str, int]) -> dict[str, int]:
    """Set a quota class's limits (the `default` class's apply to every project without its own)."""
    def write(session: Session) -> dict[str, int]:
        _known(session, changes)
        for resource, limit in changes.items():
            row = session.get(m.QuotaClass, (class_name, resource))
            if row is None:
                session.add(m.QuotaClass(class_name=class_name, resource=resource, hard_limit=limit))
            else:
                row.hard_limit = limit
        session.flush()
        return quotas.class_limits(session, settings, class_name)
    return await db.run(write, write=True)


async def reset_limits(db: Database, project_id: str) -> None:
    """Back to the defaults."""
    await db.run(lambda s: s.execute(delete(m.Quota).where(m.Quota.project_id == project_id)), write=True)
