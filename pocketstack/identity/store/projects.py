"""Projects: the owners of resources, in a domain and optionally under a parent project."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Forbidden
from pocketstack.identity import models as m
from pocketstack.identity.service import IdentityManager, new_id
from pocketstack.identity.store.common import get_or_404
from pocketstack.identity.store.records import remove_owned
from pocketstack.identity.store.resources import duplicate_name, update_enablable


async def _domain_of(session: AsyncSession, domain_id: str | None, parent_id: str | None, fallback: str) -> str:
    """The domain of a new project: the one given, else its parent's, else `fallback`; 400 when it is not there
    or not the parent's."""
    if parent_id:
        parent = await session.get(m.Project, parent_id)
        if parent is None:
            raise BadRequest(f"Invalid input: parent project {parent_id} does not exist.")
        domain_id = domain_id or parent.domain_id
        if parent.domain_id != domain_id:
            raise BadRequest("Invalid input: a project must be in the domain of its parent.")
    domain_id = domain_id or fallback
    if await session.get(m.Domain, domain_id) is None:
        raise BadRequest(f"Invalid input: domain {domain_id} does not exist.")
    return domain_id


async def create(db: Database, *, name: str, domain_id: str | None, parent_id: str | None, fallback_domain_id: str,
                 description: str, enabled: bool, tags: list[str], extra: dict[str, Any]) -> m.Project:
    """A new project (in `fallback_domain_id` when neither it nor its parent names a domain); 409 when its name
    is taken in its domain."""
    async def write(session: AsyncSession) -> m.Project:
        domain = await _domain_of(session, domain_id, parent_id, fallback_domain_id)
        with duplicate_name("project", name, domain):
            project = m.Project(id=new_id(), name=name, domain_id=domain,
                                parent_id=parent_id if parent_id != domain else None, description=description,
                                enabled=enabled, tags=tags, extra=extra)
            session.add(project)
            await session.flush()
        return project
    return await db.run(write, write=True)


async def update(mgr: IdentityManager, project_id: str, *, attrs: dict[str, Any], enabled: bool | None,
                 extra: dict[str, Any]) -> m.Project:
    """Set a project's `attrs` (name, description, tags); disabling it revokes its tokens."""
    return await update_enablable(mgr, m.Project, "project", project_id, attrs=attrs, enabled=enabled, extra=extra)


async def remove(mgr: IdentityManager, project_id: str) -> None:
    """Delete a project without child projects (403 otherwise) and its grants, and revoke its tokens."""
    async def write(session: AsyncSession) -> None:
        project = await get_or_404(session, m.Project, project_id, "project")
        if await session.scalar(select(m.Project.id).where(m.Project.parent_id == project_id).limit(1)):
            raise Forbidden("Cannot delete a project that has child projects.")
        await session.execute(delete(m.Assignment).where(m.Assignment.target_id == project_id))
        await remove_owned(session, project_id, "project_endpoint", "project_endpoint_group")
        await session.delete(project)
        await mgr.add_revocation(session, project_id=project_id)
    await mgr.db.run(write, write=True)


async def set_tags(mgr: IdentityManager, project_id: str, change: Callable[[list[str]], list[str]]) -> list[str]:
    """Replace a project's tags by `change(current tags)` in one transaction; the new tags."""
    async def write(session: AsyncSession) -> list[str]:
        project = await get_or_404(session, m.Project, project_id, "project")
        project.tags = change(list(project.tags or []))
        return list(project.tags)
    return await mgr.db.run(write, write=True)
