"""Roles, implied roles, grants on projects and domains, and `GET /v3/role_assignments`."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import Field
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, Conflict, Forbidden, NotFound
from pocketstack.identity import models as m
from pocketstack.identity.api.common import (
    Strict,
    base,
    collection,
    enforce,
    link,
    manager,
    parse_bool,
    role_body,
)
from pocketstack.identity.api.resources import _get, _wrapped, revoke_group_members
from pocketstack.identity.service import new_id


class RoleCreate(Strict):
    name: str = Field(min_length=1, max_length=255)
    domain_id: str | None = None
    description: str = ""
    options: dict[str, Any] = {}


class RoleUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = None
    options: dict[str, Any] | None = None


async def create_role(request: Request) -> Response:
    enforce(request, "identity:create_role")
    data = RoleCreate.model_validate(_wrapped(await json_body(request), "role"))
    mgr = manager(request)
    try:
        async with mgr.db.session(write=True) as session:
            if await session.scalar(select(m.Role.id).where(m.Role.name == data.name,
                                                             m.Role.domain_id == data.domain_id)):
                raise IntegrityError("duplicate", None, ValueError())
            role = m.Role(id=new_id(), name=data.name, domain_id=data.domain_id, description=data.description)
            session.add(role)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"Conflict occurred attempting to store role - Duplicate entry found with name {data.name}.")
    return json_response({"role": role_body(request, role)}, status=201)


async def list_roles(request: Request, name: str | None = None, domain_id: str | None = None) -> Response:
    enforce(request, "identity:list_roles")
    query = select(m.Role).order_by(m.Role.name).where(m.Role.domain_id == domain_id if domain_id else
                                                         m.Role.domain_id.is_(None))
    if name is not None:
        query = query.where(m.Role.name == name)
    async with manager(request).db.session(write=False) as session:
        rows = (await session.scalars(query)).all()
    return collection(request, "roles", [role_body(request, r) for r in rows])


async def get_role(request: Request, role_id: str) -> Response:
    enforce(request, "identity:get_role")
    async with manager(request).db.session(write=False) as session:
        role = await _get(session, m.Role, role_id, "role")
    return json_response({"role": role_body(request, role)})


async def update_role(request: Request, role_id: str) -> Response:
    enforce(request, "identity:update_role")
    data = RoleUpdate.model_validate(_wrapped(await json_body(request), "role"))
    mgr = manager(request)
    try:
        async with mgr.db.session(write=True) as session:
            role = await _get(session, m.Role, role_id, "role")
            if data.name is not None:
                role.name = data.name
            if data.description is not None:
                role.description = data.description
            await session.flush()
    except IntegrityError:
        raise Conflict(f"Conflict occurred attempting to store role - Duplicate entry found with name {data.name}.")
    mgr.invalidate()
    return json_response({"role": role_body(request, role)})


async def delete_role(request: Request, role_id: str) -> Response:
    enforce(request, "identity:delete_role")
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        role = await _get(session, m.Role, role_id, "role")
        if role.name in ("admin", "member", "reader"):
            raise Forbidden(f"The built-in role {role.name} cannot be deleted.")
        grants = (await session.scalars(select(m.Assignment).where(m.Assignment.role_id == role_id))).all()
        for grant in grants:
            await _revoke_for_grant(mgr, session, grant)
        await session.execute(delete(m.Assignment).where(m.Assignment.role_id == role_id))
        await session.execute(delete(m.ImpliedRole).where(
            (m.ImpliedRole.prior_role_id == role_id) | (m.ImpliedRole.implied_role_id == role_id)))
        await session.delete(role)
    mgr.invalidate()
    return Response(status_code=204)


# ----- implied roles ---------------------------------------------------------------------------------------
def _role_ref(request: Request, role: m.Role) -> dict[str, Any]:
    return {"id": role.id, "name": role.name, "links": link(request, f"roles/{role.id}")}


async def list_implied(request: Request, prior_id: str) -> Response:
    enforce(request, "identity:list_implied_roles")
    async with manager(request).db.session(write=False) as session:
        prior = await _get(session, m.Role, prior_id, "role")
        implied = (await session.scalars(select(m.Role).join(m.ImpliedRole, m.ImpliedRole.implied_role_id == m.Role.id)
                                         .where(m.ImpliedRole.prior_role_id == prior_id))).all()
    return json_response({"role_inference": {"prior_role": _role_ref(request, prior),
                                             "implies": [_role_ref(request, r) for r in implied]},
                          "links": link(request, f"roles/{prior_id}/implies")})


async def create_implied(request: Request, prior_id: str, implied_id: str) -> Response:
    enforce(request, "identity:create_implied_role")
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        prior = await _get(session, m.Role, prior_id, "role")
        implied = await _get(session, m.Role, implied_id, "role")
        if prior_id == implied_id or prior_id in await mgr._implied_closure(session, {implied_id}):
            raise BadRequest("Invalid input: the implied role would create a cycle.")
        if await session.get(m.ImpliedRole, (prior_id, implied_id)) is None:
            session.add(m.ImpliedRole(prior_role_id=prior_id, implied_role_id=implied_id))
    mgr.invalidate()
    return json_response({"role_inference": {"prior_role": _role_ref(request, prior),
                                             "implies": _role_ref(request, implied)},
                          "links": link(request, f"roles/{prior_id}/implies/{implied_id}")}, status=201)


async def delete_implied(request: Request, prior_id: str, implied_id: str) -> Response:
    enforce(request, "identity:delete_implied_role")
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        rule = await session.get(m.ImpliedRole, (prior_id, implied_id))
        if rule is None:
            raise NotFound(f"{prior_id} does not imply {implied_id}.")
        await session.delete(rule)
    mgr.invalidate()
    return Response(status_code=204)


async def list_inferences(request: Request) -> Response:
    enforce(request, "identity:list_role_inference_rules")
    async with manager(request).db.session(write=False) as session:
        roles = {r.id: r for r in (await session.scalars(select(m.Role))).all()}
        rules = (await session.scalars(select(m.ImpliedRole))).all()
    grouped: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        grouped.setdefault(rule.prior_role_id, []).append(_role_ref(request, roles[rule.implied_role_id]))
    return json_response({"role_inferences": [
        {"prior_role": _role_ref(request, roles[prior]), "implies": implies} for prior, implies in grouped.items()],
        "links": link(request, "role_inferences")})


# ----- grants ----------------------------------------------------------------------------------------------
GRANT_TYPES = {("projects", "users"): "UserProject", ("projects", "groups"): "GroupProject",
               ("domains", "users"): "UserDomain", ("domains", "groups"): "GroupDomain"}


async def _revoke_for_grant(mgr: Any, session: Any, grant: m.Assignment) -> None:
    """Implied revocation when a grant goes away: tokens of the affected users on that scope."""
    project_id = grant.target_id if grant.type.endswith("Project") and not grant.inherited else None
    if grant.type.startswith("User"):
        await mgr.add_revocation(session, user_id=grant.actor_id, project_id=project_id)
    else:
        await revoke_group_members(mgr, session, grant.actor_id, project_id=project_id)


async def _check_grant_parts(session: Any, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                             role_id: str | None) -> None:
    await _get(session, m.Project if target_kind == "projects" else m.Domain, target_id, target_kind[:-1])
    await _get(session, m.User if actor_kind == "users" else m.Group, actor_id, actor_kind[:-1])
    if role_id is not None:
        await _get(session, m.Role, role_id, "role")


def _grant_key(target_kind: str, actor_kind: str) -> str:
    key = GRANT_TYPES.get((target_kind, actor_kind))
    if key is None:
        raise NotFound()
    return key


async def _put_grant(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                     role_id: str, inherited: bool) -> Response:
    enforce(request, "identity:create_grant")
    kind = _grant_key(target_kind, actor_kind)
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        await _check_grant_parts(session, target_kind, target_id, actor_kind, actor_id, role_id)
        key = (kind, actor_id, target_id, role_id, inherited)
        if await session.get(m.Assignment, key) is None:
            session.add(m.Assignment(type=kind, actor_id=actor_id, target_id=target_id, role_id=role_id,
                                     inherited=inherited))
    mgr.invalidate()
    return Response(status_code=204)


async def _head_grant(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                      role_id: str, inherited: bool) -> Response:
    enforce(request, "identity:check_grant")
    kind = _grant_key(target_kind, actor_kind)
    async with manager(request).db.session(write=False) as session:
        await _check_grant_parts(session, target_kind, target_id, actor_kind, actor_id, role_id)
        if await session.get(m.Assignment, (kind, actor_id, target_id, role_id, inherited)) is None:
            raise NotFound(f"Could not find role assignment with role: {role_id}, {actor_kind[:-1]}: {actor_id}, "
                           f"{target_kind[:-1]}: {target_id}.")
    return Response(status_code=204)


async def _delete_grant(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                        role_id: str, inherited: bool) -> Response:
    enforce(request, "identity:revoke_grant")
    kind = _grant_key(target_kind, actor_kind)
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        grant = await session.get(m.Assignment, (kind, actor_id, target_id, role_id, inherited))
        if grant is None:
            raise NotFound(f"Could not find role assignment with role: {role_id}, {actor_kind[:-1]}: {actor_id}, "
                           f"{target_kind[:-1]}: {target_id}.")
        await _revoke_for_grant(mgr, session, grant)
        await session.delete(grant)
    mgr.invalidate()
    return Response(status_code=204)


async def put_grant(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                    role_id: str) -> Response:
    return await _put_grant(request, target_kind, target_id, actor_kind, actor_id, role_id, False)


async def head_grant(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                     role_id: str) -> Response:
    return await _head_grant(request, target_kind, target_id, actor_kind, actor_id, role_id, False)


async def delete_grant(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                       role_id: str) -> Response:
    return await _delete_grant(request, target_kind, target_id, actor_kind, actor_id, role_id, False)


async def put_inherited(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                        role_id: str) -> Response:
    return await _put_grant(request, target_kind, target_id, actor_kind, actor_id, role_id, True)


async def head_inherited(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                         role_id: str) -> Response:
    return await _head_grant(request, target_kind, target_id, actor_kind, actor_id, role_id, True)


async def delete_inherited(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                           role_id: str) -> Response:
    return await _delete_grant(request, target_kind, target_id, actor_kind, actor_id, role_id, True)


async def list_grants(request: Request, target_kind: str, target_id: str, actor_kind: str,
                      actor_id: str) -> Response:
    enforce(request, "identity:list_grants")
    kind = _grant_key(target_kind, actor_kind)
    async with manager(request).db.session(write=False) as session:
        await _check_grant_parts(session, target_kind, target_id, actor_kind, actor_id, None)
        roles = (await session.scalars(select(m.Role).join(m.Assignment, m.Assignment.role_id == m.Role.id).where(
            m.Assignment.type == kind, m.Assignment.actor_id == actor_id, m.Assignment.target_id == target_id,
            m.Assignment.inherited.is_(False)).order_by(m.Role.name))).all()
    return collection(request, "roles", [role_body(request, r) for r in roles])


# ----- role assignments ------------------------------------------------------------------------------------
async def _names(session: Any) -> dict[tuple[str, str], dict[str, Any]]:
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


def _assignment_view(prefix: str, row: dict[str, Any], names: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    def ref(kind: str, ident: str) -> dict[str, Any]:
        return {"id": ident, **names.get((kind, ident), {})}

    actor_kind, actor_id = row["actor"]
    target_kind, target_id = row["target"]
    scope: dict[str, Any] = {target_kind: ref(target_kind, target_id)}
    if row["inherited"]:
        scope["OS-INHERIT:inherited_to"] = "projects"
    url = f"{prefix}/{target_kind}s/{target_id}/{actor_kind}s/{actor_id}/roles/{row['role']}"
    item: dict[str, Any] = {"role": ref("role", row["role"]), actor_kind: ref(actor_kind, actor_id),
                            "scope": scope, "links": {"assignment": url}}
    if row.get("via_group"):
        item["links"]["membership"] = f"{prefix}/groups/{row['via_group']}/users/{actor_id}"
    if row.get("prior"):
        item["links"]["prior_role"] = f"{prefix}/roles/{row['prior']}"
    return item


async def list_role_assignments(request: Request) -> Response:
    enforce(request, "identity:list_role_assignments")
    q = request.query_params
    effective = "effective" in q and parse_bool(q.get("effective")) is not False
    include_names = parse_bool(q.get("include_names")) or False
    user_id, group_id, role_id = q.get("user.id"), q.get("group.id"), q.get("role.id")
    project_id, domain_id = q.get("scope.project.id"), q.get("scope.domain.id")
    inherited_only = q.get("scope.OS-INHERIT:inherited_to") == "projects"
    if effective and group_id:
        raise BadRequest("Invalid input: 'effective' cannot be combined with 'group.id'.")
    if project_id and domain_id:
        raise BadRequest("Invalid input: give at most one of 'scope.project.id' and 'scope.domain.id'.")
    mgr = manager(request)
    async with mgr.db.session(write=False) as session:
        grants = (await session.scalars(select(m.Assignment))).all()
        rows: list[dict[str, Any]] = []  # each: actor kind/id, target kind/id, role id, inherited, via
        members: dict[str, list[str]] = {}
        if effective:
            for mem in (await session.scalars(select(m.Membership))).all():
                members.setdefault(mem.group_id, []).append(mem.user_id)
            projects_by_domain: dict[str, list[str]] = {}
            for pid, pdom in (await session.execute(select(m.Project.id, m.Project.domain_id))).all():
                projects_by_domain.setdefault(pdom, []).append(pid)
        for g in grants:
            actor_kind = "user" if g.type.startswith("User") else "group"
            target_kind = "project" if g.type.endswith("Project") else "domain"
            if not effective:
                rows.append({"actor": (actor_kind, g.actor_id), "target": (target_kind, g.target_id),
                             "role": g.role_id, "inherited": g.inherited})
                continue
            actors = [g.actor_id] if actor_kind == "user" else members.get(g.actor_id, [])
            targets = ([("project", p) for p in projects_by_domain.get(g.target_id, [])]
                       if g.inherited and target_kind == "domain" else [(target_kind, g.target_id)])
            for actor in actors:
                for target in targets:
                    rows.append({"actor": ("user", actor), "target": target, "role": g.role_id, "inherited": False,
                                 "via_group": g.actor_id if actor_kind == "group" else None})
        if effective:
            expanded = []
            for row in rows:
                for rid in await mgr._implied_closure(session, {row["role"]}):
                    expanded.append({**row, "role": rid, "prior": row["role"] if rid != row["role"] else None})
            rows = expanded

        def keep(row: dict[str, Any]) -> bool:
            if user_id and row["actor"] != ("user", user_id):
                return False
            if group_id and row["actor"] != ("group", group_id):
                return False
            if role_id and row["role"] != role_id:
                return False
            if project_id and row["target"] != ("project", project_id):
                return False
            if domain_id and row["target"] != ("domain", domain_id):
                return False
            return not (inherited_only and not row["inherited"])

        rows = [r for r in rows if keep(r)]
        names = await _names(session) if include_names else {}
    prefix = base(request)
    result = [_assignment_view(prefix, row, names) for row in rows]
    return collection(request, "role_assignments", result)
