"""OS-TRUST: trusts (a trustor delegates some of its roles on a project to a trustee) and their use in tokens."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Forbidden, NotFound, Unauthorized
from pocketstack.common.timeutils import utcnow
from pocketstack.identity import models as m
from pocketstack.identity.store.common import get_or_404
from pocketstack.identity.store.roles import effective_role_ids, implied_closure


def _expired(trust: m.Trust) -> bool:
    return trust.expires_at is not None and trust.expires_at <= utcnow()


async def consume_trust(session: AsyncSession, trust: m.Trust) -> None:
    """Use a trust for a new token: 401 when it expired or has no use left; one use fewer when counted."""
    if _expired(trust):
        raise Unauthorized("The trust has expired.")
    if trust.remaining_uses is not None:
        if trust.remaining_uses <= 0:
            raise Unauthorized("The trust has no remaining uses.")
        trust.remaining_uses -= 1


async def trust_in_force(session: AsyncSession, trust_id: str) -> m.Trust:
    """The trust of a trust-scoped token; 401 once it is deleted or expired, or its trustor disabled."""
    trust = await session.get(m.Trust, trust_id)
    if trust is None or _expired(trust):
        raise Unauthorized("The trust of the token no longer exists or has expired.")
    for user_id in (trust.trustor_user_id, trust.trustee_user_id):
        user = await session.get(m.User, user_id)
        if user is None or not user.enabled:
            raise Unauthorized("The trustor or the trustee is disabled or gone.")
    return trust


async def trust_role_ids(session: AsyncSession, trust: m.Trust) -> set[str]:
    """The roles a trust-scoped token carries: the delegated ones the trustor still holds, and what they imply."""
    if trust.project_id is None:
        return set()
    held = await effective_role_ids(session, trust.trustor_user_id, project_id=trust.project_id)
    return await implied_closure(session, set(trust.roles) & held)


async def create(db: Database, fields: dict[str, Any], role_refs: list[dict[str, Any]]) -> tuple[m.Trust, list[m.Role]]:
    """A trust; 400 when trustor, trustee or project do not exist, or the trustor does not hold a named role
    on the project."""
    async def write(session: AsyncSession) -> tuple[m.Trust, list[m.Role]]:
        for key in ("trustor_user_id", "trustee_user_id"):
            if await session.get(m.User, fields[key]) is None:
                raise NotFound(f"Could not find user: {fields[key]}.")
        project_id = fields.get("project_id")
        held: set[str] = set()
        if project_id:
            if await session.get(m.Project, project_id) is None:
                raise NotFound(f"Could not find project: {project_id}.")
            held = await effective_role_ids(session, fields["trustor_user_id"], project_id=project_id)
        roles: list[m.Role] = []
        for ref in role_refs:
            if not isinstance(ref, dict) or not (ref.get("id") or ref.get("name")):
                raise BadRequest("Invalid input: a trust's role needs an 'id' or a 'name'.")
            query = select(m.Role).where(m.Role.id == str(ref["id"])) if ref.get("id") else select(m.Role).where(
                m.Role.name == str(ref["name"]), m.Role.domain_id.is_(None))
            role = await session.scalar(query)
            if role is None:
                raise NotFound(f"Could not find role: {ref.get('id') or ref.get('name')}.")
            if role.id not in held:
                raise Forbidden(f"The trustor does not hold role {role.name} on the trust's project.")
            roles.append(role)
        trust = m.Trust(**fields, roles=[r.id for r in roles])
        session.add(trust)
        await session.flush()
        return trust, roles
    return await db.run(write, write=True)


async def _roles_of(session: AsyncSession, trust: m.Trust) -> list[m.Role]:
    if not trust.roles:
        return []
    return list((await session.scalars(select(m.Role).where(m.Role.id.in_(trust.roles)))).all())


async def get(db: Database, trust_id: str) -> tuple[m.Trust, list[m.Role]]:
    """A trust that has not expired, with its roles; 404 otherwise."""
    async def read(session: AsyncSession) -> tuple[m.Trust, list[m.Role]]:
        trust = await get_or_404(session, m.Trust, trust_id, "trust")
        if _expired(trust):
            raise NotFound(f"Could not find trust: {trust_id}.")
        return trust, await _roles_of(session, trust)
    return await db.run(read, write=False)


async def list_trusts(db: Database, trustor_user_id: str | None, trustee_user_id: str | None
                      ) -> list[tuple[m.Trust, list[m.Role]]]:
    async def read(session: AsyncSession) -> list[tuple[m.Trust, list[m.Role]]]:
        query = select(m.Trust)
        if trustor_user_id:
            query = query.where(m.Trust.trustor_user_id == trustor_user_id)
        if trustee_user_id:
            query = query.where(m.Trust.trustee_user_id == trustee_user_id)
        rows = [t for t in (await session.scalars(query)).all() if not _expired(t)]
        return [(t, await _roles_of(session, t)) for t in rows]
    return await db.run(read, write=False)


async def delete(db: Database, trust_id: str) -> m.Trust:
    async def write(session: AsyncSession) -> m.Trust:
        trust = await get_or_404(session, m.Trust, trust_id, "trust")
        await session.delete(trust)
        return trust
    return await db.run(write, write=True)
