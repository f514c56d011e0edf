"""Users: their records and passwords, and what they belong to (projects they have roles on, groups)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.identity import models as m
from pocketstack.identity.service import IdentityManager, new_id
from pocketstack.identity.store.common import get_or_404
from pocketstack.identity.store.records import remove_owned
from pocketstack.identity.store.resources import apply_changes, duplicate_name
from pocketstack.identity.store.roles import effective_role_ids


async def _check_project(session: AsyncSession, project_id: str | None) -> None:
    """400 when a user's default project is given and does not exist."""
    if project_id and await session.get(m.Project, project_id) is None:
        raise BadRequest(f"Invalid input: project {project_id} does not exist.")


async def create(db: Database, *, name: str, domain_id: str, password_hash: str | None, enabled: bool,
                 default_project_id: str | None, description: str, email: str | None,
                 extra: dict[str, Any]) -> m.User:
    """A new user of an existing domain (400 otherwise); 409 when its name is taken in the domain."""
    async def write(session: AsyncSession) -> m.User:
        with duplicate_name("user", name, domain_id):
            if await session.get(m.Domain, domain_id) is None:
                raise NotFound(f"Could not find domain: {domain_id}.")
            await _check_project(session, default_project_id)
            user = m.User(id=new_id(), name=name, domain_id=domain_id, password_hash=password_hash,
                          enabled=enabled, default_project_id=default_project_id, description=description,
                          email=email, created_at=utcnow(), password_changed_at=utcnow() if password_hash else None,
                          extra=extra)
            session.add(user)
            await session.flush()
        return user
    return await db.run(write, write=True)


async def update(mgr: IdentityManager, user_id: str, *, attrs: dict[str, Any], enabled: bool | None,
                 password_hash: str | None, extra: dict[str, Any]) -> m.User:
    """Set a user's `attrs` (name, description, email, default_project_id); disabling the user or a new password
    revokes the user's tokens."""
    async def write(session: AsyncSession) -> m.User:
        with duplicate_name("user", attrs.get("name")):
            user = await get_or_404(session, m.User, user_id, "user")
            await _check_project(session, attrs.get("default_project_id"))
            apply_changes(user, attrs, extra)
            revoke = False
            if enabled is not None:
                revoke = user.enabled and not enabled
                user.enabled = enabled
            if password_hash:
                _set_password(user, password_hash)
                revoke = True
            if revoke:
                await mgr.add_revocation(session, user_id=user_id)
            await session.flush()
        return user
    return await mgr.db.run(write, write=True)


async def remove(mgr: IdentityManager, user_id: str) -> None:
    """Delete a user with the user's grants, memberships and application credentials; revoke its tokens."""
    async def write(session: AsyncSession) -> None:
        user = await get_or_404(session, m.User, user_id, "user")
        await session.execute(delete(m.Assignment).where(m.Assignment.actor_id == user_id))
        await session.execute(delete(m.Membership).where(m.Membership.user_id == user_id))
        await session.execute(delete(m.ApplicationCredential).where(m.ApplicationCredential.user_id == user_id))
        await session.execute(delete(m.Credential).where(m.Credential.user_id == user_id))
        await remove_owned(session, user_id, "access_rule", "app_cred_rules")
        await session.execute(delete(m.Trust).where(
            (m.Trust.trustor_user_id == user_id) | (m.Trust.trustee_user_id == user_id)))
        await session.delete(user)
        await mgr.add_revocation(session, user_id=user_id)
    await mgr.db.run(write, write=True)


def _set_password(user: m.User, password_hash: str) -> None:
    user.password_hash = password_hash
    user.password_changed_at = utcnow()


async def password_hash_of(db: Database, user_id: str) -> str | None:
    """The user's password hash (None without a password); 404 for no such user."""
    async def read(session: AsyncSession) -> str | None:
        return (await get_or_404(session, m.User, user_id, "user")).password_hash
    return await db.run(read, write=False)


async def set_password(mgr: IdentityManager, user_id: str, new_hash: str) -> None:
    """Change the user's password and revoke the user's tokens."""
    async def write(session: AsyncSession) -> None:
        _set_password(await get_or_404(session, m.User, user_id, "user"), new_hash)
        await mgr.add_revocation(session, user_id=user_id)
    await mgr.db.run(write, write=True)


async def projects_of(mgr: IdentityManager, user_id: str) -> list[m.Project]:
    """The projects, by name, on which the user holds a role (directly, through a group or inherited)."""
    async def read(session: AsyncSession) -> list[m.Project]:
        await get_or_404(session, m.User, user_id, "user")
        projects = (await session.scalars(select(m.Project).order_by(m.Project.name))).all()
        return [p for p in projects
                if await effective_role_ids(session, user_id, project_id=p.id, expand_implied=False)]
    return await mgr.db.run(read, write=False)
