"""Domains: the namespaces of projects, users and groups."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.db import Database
from pocketstack.common.errors import Forbidden
from pocketstack.identity import models as m
from pocketstack.identity.service import IdentityManager, new_id
from pocketstack.identity.store.common import get_or_404
from pocketstack.identity.store.records import remove_owned
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
    """Delete a disabled domain (403 while enabled) with everything it owns, as Keystone does: its projects,
    users, groups and domain roles, their grants, memberships and credentials; revoke the tokens."""
    async def write(session: AsyncSession) -> None:
        domain = await get_or_404(session, m.Domain, domain_id, "domain")
        if domain.enabled:
            raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
        project_ids = list((await session.scalars(select(m.Project.id).where(m.Project.domain_id == domain_id))).all())
        user_ids = list((await session.scalars(select(m.User.id).where(m.User.domain_id == domain_id))).all())
        group_ids = list((await session.scalars(select(m.Group.id).where(m.Group.domain_id == domain_id))).all())
        role_ids = list((await session.scalars(select(m.Role.id).where(m.Role.domain_id == domain_id))).all())
        await session.execute(delete(m.Assignment).where(
            m.Assignment.target_id.in_([domain_id, *project_ids]) | m.Assignment.actor_id.in_(user_ids + group_ids)
            | m.Assignment.role_id.in_(role_ids)))
        await session.execute(delete(m.Membership).where(
            m.Membership.user_id.in_(user_ids) | m.Membership.group_id.in_(group_ids)))
        await session.execute(delete(m.ImpliedRole).where(
            m.ImpliedRole.prior_role_id.in_(role_ids) | m.ImpliedRole.implied_role_id.in_(role_ids)))
        for model in (m.ApplicationCredential, m.Credential):
            await session.execute(delete(model).where(model.user_id.in_(user_ids)))
        await session.execute(delete(m.Trust).where(
            m.Trust.trustor_user_id.in_(user_ids) | m.Trust.trustee_user_id.in_(user_ids)))
        for model in (m.Project, m.User, m.Group, m.Role):
            await session.execute(delete(model).where(model.domain_id == domain_id))
        await remove_owned(session, domain_id, "domain_config")
        await session.delete(domain)
        await mgr.add_revocation(session, domain_id=domain_id)
        for user_id in user_ids:
            await mgr.add_revocation(session, user_id=user_id)
    await mgr.db.run(write, write=True)
