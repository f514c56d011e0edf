"""Roles, the rules by which one role implies another, and the roles a user holds on a project or domain."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict, Forbidden, NotFound
from pocketstack.identity import models as m
from pocketstack.identity.store.common import Revoker, fetch_all, get_or_404, revoke_group_members

BUILT_IN = ("admin", "member", "reader")
SYSTEM_TARGET = "system"  # the target id of system role assignments


def _duplicate(name: str | None) -> Conflict:
    return Conflict(f"Conflict occurred attempting to store role - Duplicate entry found with name {name}.")


async def _store(db: Database, name: str | None, write: Callable[[AsyncSession], Awaitable[m.Role]]) -> m.Role:
    """Run a role write; a name taken in the same domain is Keystone's 409."""
    try:
        return await db.run(write, write=True)
    except IntegrityError:
        raise _duplicate(name) from None


async def create_role(db: Database, role_id: str, name: str, domain_id: str | None, description: str) -> m.Role:
    async def write(session: AsyncSession) -> m.Role:
        if await session.scalar(select(m.Role.id).where(m.Role.name == name, m.Role.domain_id == domain_id)):
            raise _duplicate(name)
        role = m.Role(id=role_id, name=name, domain_id=domain_id, description=description)
        session.add(role)
        await session.flush()
        return role
    return await _store(db, name, write)


async def list_roles(db: Database, name: str | None, domain_id: str | None) -> list[m.Role]:
    query = select(m.Role).order_by(m.Role.name).where(m.Role.domain_id == domain_id if domain_id else
                                                         m.Role.domain_id.is_(None))
    if name is not None:
        query = query.where(m.Role.name == name)
    return await fetch_all(db, query)


async def update_role(db: Database, role_id: str, name: str | None, description: str | None) -> m.Role:
    async def write(session: AsyncSession) -> m.Role:
        role = await get_or_404(session, m.Role, role_id, "role")
        if name is not None:
            role.name = name
        if description is not None:
            role.description = description
        await session.flush()
        return role
    return await _store(db, name, write)


async def revoke_for_grant(revoker: Revoker, session: AsyncSession, grant: m.Assignment) -> None:
    """Implied revocation when a grant goes away: tokens of the affected users on that scope."""
    project_id = grant.target_id if grant.type.endswith("Project") and not grant.inherited else None
    if grant.type.startswith("User"):
        await revoker.add_revocation(session, user_id=grant.actor_id, project_id=project_id)
    else:
        await revoke_group_members(revoker, session, grant.actor_id, project_id=project_id)


async def delete_role(db: Database, revoker: Revoker, role_id: str) -> None:
    """A role (not a built-in one), its grants (revoking the tokens they gave) and its implication rules."""
    async def write(session: AsyncSession) -> None:
        role = await get_or_404(session, m.Role, role_id, "role")
        if role.name in BUILT_IN:
            raise Forbidden(f"The built-in role {role.name} cannot be deleted.")
        for grant in (await session.scalars(select(m.Assignment).where(m.Assignment.role_id == role_id))).all():
            await revoke_for_grant(revoker, session, grant)
        await session.execute(delete(m.Assignment).where(m.Assignment.role_id == role_id))
        await session.execute(delete(m.ImpliedRole).where(
            (m.ImpliedRole.prior_role_id == role_id) | (m.ImpliedRole.implied_role_id == role_id)))
        await session.delete(role)
    await db.run(write, write=True)


# ----- implied roles ---------------------------------------------------------------------------------------
async def implied_closure(session: AsyncSession, role_ids: set[str]) -> set[str]:
    """`role_ids` and every role they imply, directly or through other implied roles."""
    rules = (await session.execute(select(m.ImpliedRole.prior_role_id, m.ImpliedRole.implied_role_id))).all()
    implies: dict[str, set[str]] = {}
    for prior, implied in rules:
        implies.setdefault(prior, set()).add(implied)
    result, todo = set(role_ids), list(role_ids)
    while todo:
        for implied in implies.get(todo.pop(), ()):
            if implied not in result:
                result.add(implied)
                todo.append(implied)
    return result


async def list_implied(db: Database, prior_id: str) -> tuple[m.Role, list[m.Role]]:
    """The role `prior_id` and the roles it implies directly."""
    async def read(session: AsyncSession) -> tuple[m.Role, list[m.Role]]:
        prior = await get_or_404(session, m.Role, prior_id, "role")
        implied = (await session.scalars(select(m.Role).join(m.ImpliedRole, m.ImpliedRole.implied_role_id == m.Role.id)
                                         .where(m.ImpliedRole.prior_role_id == prior_id))).all()
        return prior, list(implied)
    return await db.run(read, write=False)


async def create_implied(db: Database, prior_id: str, implied_id: str) -> tuple[m.Role, m.Role]:
    """The rule `prior_id` implies `implied_id` (kept if it exists; 400 if it would make a cycle)."""
    async def write(session: AsyncSession) -> tuple[m.Role, m.Role]:
        prior = await get_or_404(session, m.Role, prior_id, "role")
        implied = await get_or_404(session, m.Role, implied_id, "role")
        if prior.domain_id is None and implied.domain_id is not None:
            raise Forbidden("A global role cannot imply a domain-specific role.")
        if prior_id == implied_id or prior_id in await implied_closure(session, {implied_id}):
            raise BadRequest("Invalid input: the implied role would create a cycle.")
        if await session.get(m.ImpliedRole, (prior_id, implied_id)) is None:
            session.add(m.ImpliedRole(prior_role_id=prior_id, implied_role_id=implied_id))
        return prior, implied
    return await db.run(write, write=True)


async def get_implied(db: Database, prior_id: str, implied_id: str) -> tuple[m.Role, m.Role]:
    """The rule `prior_id` implies `implied_id`; 404 when there is none."""
    async def read(session: AsyncSession) -> tuple[m.Role, m.Role]:
        prior = await get_or_404(session, m.Role, prior_id, "role")
        implied = await get_or_404(session, m.Role, implied_id, "role")
        if await session.get(m.ImpliedRole, (prior_id, implied_id)) is None:
            raise NotFound(f"{prior_id} does not imply {implied_id}.")
        return prior, implied
    return await db.run(read, write=False)


async def delete_implied(db: Database, prior_id: str, implied_id: str) -> None:
    async def write(session: AsyncSession) -> None:
        rule = await session.get(m.ImpliedRole, (prior_id, implied_id))
        if rule is None:
            raise NotFound(f"{prior_id} does not imply {implied_id}.")
        await session.delete(rule)
    await db.run(write, write=True)


async def inference_rules(db: Database) -> tuple[dict[str, m.Role], list[tuple[str, str]]]:
    """Every role by id, and every rule as (prior role id, implied role id)."""
    async def read(session: AsyncSession) -> tuple[dict[str, m.Role], list[tuple[str, str]]]:
        roles = {r.id: r for r in (await session.scalars(select(m.Role))).all()}
        rules = (await session.scalars(select(m.ImpliedRole))).all()
        return roles, [(rule.prior_role_id, rule.implied_role_id) for rule in rules]
    return await db.run(read, write=False)


# ----- what a user holds -----------------------------------------------------------------------------------
async def effective_role_ids(session: AsyncSession, user_id: str, *, project_id: str | None = None,
                             domain_id: str | None = None, system: bool = False,
                             expand_implied: bool = True) -> set[str]:
    """Roles a user holds on a project, a domain or the system: direct, through groups, inherited from the
    domain or a parent project."""
    group_ids = list((await session.scalars(
        select(m.Membership.group_id).where(m.Membership.user_id == user_id))).all())
    actors = [user_id, *group_ids]
    role_ids: set[str] = set()

    async def granted(target_id: str, types: tuple[str, str], inherited: bool) -> None:
        rows = await session.scalars(select(m.Assignment.role_id).where(
            m.Assignment.actor_id.in_(actors), m.Assignment.target_id == target_id,
            m.Assignment.type.in_(types), m.Assignment.inherited.is_(inherited)))
        role_ids.update(rows.all())

    if project_id is not None:
        project = await session.get(m.Project, project_id)
        if project is None:
            return set()
        await granted(project_id, ("UserProject", "GroupProject"), False)
        await granted(project.domain_id, ("UserDomain", "GroupDomain"), True)
        parent_id, seen = project.parent_id, {project_id}
        while parent_id and parent_id not in seen:  # OS-INHERIT: grants on a parent reach its subtree
            seen.add(parent_id)
            await granted(parent_id, ("UserProject", "GroupProject"), True)
            parent = await session.get(m.Project, parent_id)
            parent_id = parent.parent_id if parent is not None else None
    elif domain_id is not None:
        await granted(domain_id, ("UserDomain", "GroupDomain"), False)
    elif system:
        await granted(SYSTEM_TARGET, ("UserSystem", "GroupSystem"), False)
    if expand_implied and role_ids:
        role_ids = await global_only(session, await implied_closure(session, role_ids))
    return role_ids


async def global_only(session: AsyncSession, role_ids: set[str]) -> set[str]:
    """`role_ids` without the domain-specific roles: those only stand for the global roles they imply."""
    if not role_ids:
        return role_ids
    scoped = set((await session.scalars(select(m.Role.id).where(
        m.Role.id.in_(role_ids), m.Role.domain_id.is_not(None)))).all())
    return role_ids - scoped


async def held_roles(db: Database, user_id: str, project_id: str) -> dict[str, str]:
    """Id -> name of every role the user holds on the project (implied ones included)."""
    async def read(session: AsyncSession) -> dict[str, str]:
        role_ids = await effective_role_ids(session, user_id, project_id=project_id)
        return {r.id: r.name for r in (await session.scalars(select(m.Role).where(m.Role.id.in_(role_ids)))).all()}
    return await db.run(read, write=False)


async def scopes_of(db: Database, user_id: str, kind: str) -> list[Any]:
    """`GET /v3/auth/projects` (kind "projects") or `/v3/auth/domains`: the enabled ones the user holds a role on
    (directly, through a group or inherited; implied roles do not count)."""
    model: Any = m.Project if kind == "projects" else m.Domain
    scope = "project_id" if kind == "projects" else "domain_id"

    async def read(session: AsyncSession) -> list[Any]:
        rows = (await session.scalars(select(model).where(model.enabled.is_(True)))).all()
        return [row for row in rows
                if await effective_role_ids(session, user_id, expand_implied=False, **{scope: row.id})]
    return await db.run(read, write=False)


async def has_system_role(db: Database, user_id: str) -> bool:
    """`GET /v3/auth/system`: whether the user holds a role on the system (directly or through a group)."""
    async def read(session: AsyncSession) -> bool:
        return bool(await effective_role_ids(session, user_id, system=True, expand_implied=False))
    return await db.run(read, write=False)
