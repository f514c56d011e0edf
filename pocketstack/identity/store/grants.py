"""Grants of a role to a user or group on a project or domain (inherited ones too), and the rows of
`GET /v3/role_assignments`, effective or not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.db import Database
from pocketstack.common.errors import NotFound
from pocketstack.identity import models as m
from pocketstack.identity.store.common import Revoker, get_or_404
from pocketstack.identity.store.roles import implied_closure, revoke_for_grant

GRANT_TYPES = {("projects", "users"): "UserProject", ("projects", "groups"): "GroupProject",
               ("domains", "users"): "UserDomain", ("domains", "groups"): "GroupDomain",
               ("system", "users"): "UserSystem", ("system", "groups"): "GroupSystem"}


@dataclass(frozen=True)
class Grant:
    """One grant as the URL names it: /{target_kind}/{target_id}/{actor_kind}/{actor_id}/roles/{role_id}."""

    target_kind: str  # projects | domains | system (target_id "system")
    target_id: str
    actor_kind: str  # users | groups
    actor_id: str
    role_id: str | None  # None: the grants' list
    inherited: bool = False

    @property
    def type(self) -> str:
        kind = GRANT_TYPES.get((self.target_kind, self.actor_kind))
        if kind is None:
            raise NotFound()
        return kind

    @property
    def key(self) -> tuple[str, str, str, str | None, bool]:
        return self.type, self.actor_id, self.target_id, self.role_id, self.inherited

    def not_found(self) -> NotFound:
        return NotFound(f"Could not find role assignment with role: {self.role_id}, {self.actor_kind[:-1]}: "
                        f"{self.actor_id}, {self.target_kind[:-1]}: {self.target_id}.")


async def _check_parts(session: AsyncSession, grant: Grant) -> None:
    """404 for the first of target, actor and role that does not exist."""
    if grant.target_kind != "system":
        await get_or_404(session, m.Project if grant.target_kind == "projects" else m.Domain, grant.target_id,
                         grant.target_kind[:-1])
    await get_or_404(session, m.User if grant.actor_kind == "users" else m.Group, grant.actor_id,
                     grant.actor_kind[:-1])
    if grant.role_id is not None:
        await get_or_404(session, m.Role, grant.role_id, "role")


async def put_grant(db: Database, grant: Grant) -> None:
    key = grant.key

    async def write(session: AsyncSession) -> None:
        await _check_parts(session, grant)
        if await session.get(m.Assignment, key) is None:
            session.add(m.Assignment(type=key[0], actor_id=grant.actor_id, target_id=grant.target_id,
                                     role_id=grant.role_id, inherited=grant.inherited))
    await db.run(write, write=True)


async def check_grant(db: Database, grant: Grant) -> None:
    """404 unless the grant exists."""
    key = grant.key  # 404 for a pair of kinds that cannot be granted, before any query

    async def read(session: AsyncSession) -> None:
        await _check_parts(session, grant)
        if await session.get(m.Assignment, key) is None:
            raise grant.not_found()
    await db.run(read, write=False)


async def delete_grant(db: Database, revoker: Revoker, grant: Grant) -> None:
    """The grant, and the tokens it gave."""
    key = grant.key

    async def write(session: AsyncSession) -> None:
        row = await session.get(m.Assignment, key)
        if row is None:
            raise grant.not_found()
        await revoke_for_grant(revoker, session, row)
        await session.delete(row)
    await db.run(write, write=True)


async def granted_roles(db: Database, grant: Grant) -> list[m.Role]:
    """The roles granted directly to the actor on the target (the inherited ones for an inherited grant), by
    name."""
    kind = grant.type

    async def read(session: AsyncSession) -> list[m.Role]:
        await _check_parts(session, grant)
        return list((await session.scalars(select(m.Role).join(m.Assignment, m.Assignment.role_id == m.Role.id).where(
            m.Assignment.type == kind, m.Assignment.actor_id == grant.actor_id,
            m.Assignment.target_id == grant.target_id, m.Assignment.inherited.is_(grant.inherited))
            .order_by(m.Role.name))).all())
    return await db.run(read, write=False)


# ----- role assignments ------------------------------------------------------------------------------------
Row = dict[str, Any]  # actor (kind, id), target (kind, id), role id, inherited; effective: via_group, prior


def _direct(grant: m.Assignment) -> tuple[str, str]:
    target = "project" if grant.type.endswith("Project") else "system" if grant.type.endswith("System") else "domain"
    return "user" if grant.type.startswith("User") else "group", target


async def _effective(session: AsyncSession, grants: list[m.Assignment]) -> list[Row]:
    """Grants as the users hold them: group grants expanded to members, inherited ones to the projects of the
    domain or the subtree of the project, each role to the roles it implies (domain-specific roles, which only
    stand for what they imply, left out)."""
    members: dict[str, list[str]] = {}
    for mem in (await session.scalars(select(m.Membership))).all():
        members.setdefault(mem.group_id, []).append(mem.user_id)
    projects_by_domain: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for pid, pdom, parent in (await session.execute(select(m.Project.id, m.Project.domain_id,
                                                           m.Project.parent_id))).all():
        projects_by_domain.setdefault(pdom, []).append(pid)
        if parent:
            children.setdefault(parent, []).append(pid)

    def subtree(project_id: str) -> list[str]:
        found, todo = [], list(children.get(project_id, []))
        while todo:
            pid = todo.pop()
            if pid not in found:
                found.append(pid)
                todo.extend(children.get(pid, []))
        return found

    domain_roles = set((await session.scalars(select(m.Role.id).where(m.Role.domain_id.is_not(None)))).all())
    rows: list[Row] = []
    for g in grants:
        actor_kind, target_kind = _direct(g)
        actors = [g.actor_id] if actor_kind == "user" else members.get(g.actor_id, [])
        if g.inherited and target_kind == "domain":
            targets = [("project", p) for p in projects_by_domain.get(g.target_id, [])]
        elif g.inherited and target_kind == "project":
            targets = [("project", p) for p in subtree(g.target_id)]
        else:
            targets = [(target_kind, g.target_id)]
        for actor in actors:
            for target in targets:
                rows.append({"actor": ("user", actor), "target": target, "role": g.role_id, "inherited": False,
                             "via_group": g.actor_id if actor_kind == "group" else None})
    expanded = []
    for row in rows:
        for rid in await implied_closure(session, {row["role"]}):
            if rid not in domain_roles:
                expanded.append({**row, "role": rid, "prior": row["role"] if rid != row["role"] else None})
    return expanded


async def _names(session: AsyncSession) -> dict[tuple[str, str], dict[str, Any]]:
    """Names (and domains) of every domain, user, group, project and role, for `include_names`."""
    names: dict[tuple[str, str], dict[str, Any]] = {}
    domains = {d.id: d.name for d in (await session.scalars(select(m.Domain))).all()}
    for d_id, d_name in domains.items():
        names[("domain", d_id)] = {"name": d_name}
    for model, kind in ((m.User, "user"), (m.Group, "group"), (m.Project, "project")):
        for ent in (await session.scalars(select(model))).all():
            names[(kind, ent.id)] = {"name": ent.name, "domain": {"id": ent.domain_id,
                                                                  "name": domains.get(ent.domain_id)}}
    for role in (await session.scalars(select(m.Role))).all():
        names[("role", role.id)] = {"name": role.name}
    return names


async def role_assignments(db: Database, *, effective: bool, include_names: bool
                           ) -> tuple[list[Row], dict[tuple[str, str], dict[str, Any]]]:
    """Every assignment row (the caller filters them), and the names of what they refer to when asked."""
    async def read(session: AsyncSession) -> tuple[list[Row], dict[tuple[str, str], dict[str, Any]]]:
        grants = list((await session.scalars(select(m.Assignment))).all())
        if effective:
            rows = await _effective(session, grants)
        else:
            rows = [{"actor": (kinds[0], g.actor_id), "target": (kinds[1], g.target_id), "role": g.role_id,
                     "inherited": g.inherited} for g in grants for kinds in (_direct(g),)]
        return rows, (await _names(session) if include_names else {})
    return await db.run(read, write=False)
