"""Domains: the namespaces of projects, users and groups."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.db import Database
from pocketstack.common.errors import Conflict, Forbidden
from pocketstack.identity import models as m
from pocketstack.identity.service import IdentityManager, new_id
from pocketstack.identity.store.common import get_or_404
from pocketstack.identity.store.resources import duplicate_name, update_enablable


async def create(db: Database, *, name: str, description: str, enabled: bool, extra: dict[str, Any]) -> m.Domain:
    """A new domain; 409 when its name is taken."""
    async def write(session: AsyncSession) -> m.Domain:
        with duplicate_name("domain", name):
            domain = m.Domain(id=new_id(), name=name, description=description, enabled=enabled, extra=extra)
            session.add(domain)
            await session.flush()
        return domain
    return await db.run(write, write=True)


async def update(mgr: IdentityManager, domain_id: str, default_id: str, *, attrs: dict[str, Any],
                 enabled: bool | None, extra: dict[str, Any]) -> m.Domain:
    """Set a domain's `attrs` (name, description); disabling it revokes its tokens, and `default_id` cannot be
    disabled."""
    forbid = "The default domain cannot be disabled." if domain_id == default_id else None
    return await update_enablable(mgr, m.Domain, "domain", domain_id, attrs=attrs, enabled=enabled, extra=extra,
                                  forbid_disabling=forbid)


async def remove(mgr: IdentityManager, domain_id: str) -> None:
    """Delete a disabled domain that owns nothing (403, 409 otherwise), its grants, and revoke its tokens."""
    async def write(session: AsyncSession) -> None:
        domain = await get_or_404(session, m.Domain, domain_id, "domain")
        if domain.enabled:
            raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
        for model in (m.Project, m.User, m.Group):
            if await session.scalar(select(model.id).where(model.domain_id == domain_id).limit(1)):
                raise Conflict(f"Cannot delete domain {domain_id}: it still owns {model.__tablename__}.")
        await session.execute(delete(m.Assignment).where(m.Assignment.target_id == domain_id))
        await session.delete(domain)
        await mgr.add_revocation(session, domain_id=domain_id)
    await mgr.db.run(write, write=True)
