"""Roles, implied roles, grants on projects and domains, and `GET /v3/role_assignments`."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import Field

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest
from pocketstack.identity.api.common import (
    Strict,
    base,
    collection,
    enforce,
    link,
    manager,
    parse_bool,
    role_body,
    wrapped,
)
from pocketstack.identity.service import new_id
from pocketstack.identity.store import grants, roles
from pocketstack.identity.store.common import Role, fetch
from pocketstack.identity.store.grants import Grant
from pocketstack.identity.store.roles import SYSTEM_TARGET


class RoleCreate(Strict):
    name: str = Field(min_length=1, max_length=255)
    domain_id: str | None = None
    description: str | None = ""
    options: dict[str, Any] = {}


class RoleUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = None
    options: dict[str, Any] | None = None


async def create_role(request: Request) -> Response:
    enforce(request, "identity:create_role")
    data = RoleCreate.model_validate(wrapped(await json_body(request), "role"))
    role = await roles.create_role(manager(request).db, new_id(), data.name, data.domain_id, data.description or "")
    return json_response({"role": role_body(request, role)}, status=201)


async def list_roles(request: Request, name: str | None = None, domain_id: str | None = None) -> Response:
    enforce(request, "identity:list_roles")
    rows = await roles.list_roles(manager(request).db, name, domain_id)
    return collection(request, "roles", [role_body(request, r) for r in rows])


async def get_role(request: Request, role_id: str) -> Response:
    enforce(request, "identity:get_role")
    role = await fetch(manager(request).db, Role, role_id, "role")
    return json_response({"role": role_body(request, role)})


async def update_role(request: Request, role_id: str) -> Response:
    enforce(request, "identity:update_role")
    data = RoleUpdate.model_validate(wrapped(await json_body(request), "role"))
    mgr = manager(request)
    role = await roles.update_role(mgr.db, role_id, data.name, data.description)
    mgr.invalidate()
    return json_response({"role": role_body(request, role)})


async def delete_role(request: Request, role_id: str) -> Response:
    enforce(request, "identity:delete_role")
    mgr = manager(request)
    await roles.delete_role(mgr.db, mgr, role_id)
    mgr.invalidate()
    return Response(status_code=204)


# ----- implied roles ---------------------------------------------------------------------------------------
def _role_ref(request: Request, role: Role) -> dict[str, Any]:
    return {"id": role.id, "name": role.name, "links": link(request, f"roles/{role.id}")}


async def list_implied(request: Request, prior_id: str) -> Response:
    enforce(request, "identity:list_implied_roles")
    prior, implied = await roles.list_implied(manager(request).db, prior_id)
    return json_response({"role_inference": {"prior_role": _role_ref(request, prior),
                                             "implies": [_role_ref(request, r) for r in implied]},
                          "links": link(request, f"roles/{prior_id}/implies")})


async def create_implied(request: Request, prior_id: str, implied_id: str) -> Response:
    enforce(request, "identity:create_implied_role")
    mgr = manager(request)
    prior, implied = await roles.create_implied(mgr.db, prior_id, implied_id)
    mgr.invalidate()
    return json_response({"role_inference": {"prior_role": _role_ref(request, prior),
                                             "implies": _role_ref(request, implied)},
                          "links": link(request, f"roles/{prior_id}/implies/{implied_id}")}, status=201)


async def get_implied(request: Request, prior_id: str, implied_id: str) -> Response:
    enforce(request, "identity:get_implied_role")
    prior, implied = await roles.get_implied(manager(request).db, prior_id, implied_id)
    return json_response({"role_inference": {"prior_role": _role_ref(request, prior),
                                             "implies": _role_ref(request, implied)},
                          "links": link(request, f"roles/{prior_id}/implies/{implied_id}")})


async def check_implied(request: Request, prior_id: str, implied_id: str) -> Response:
    enforce(request, "identity:get_implied_role")
    await roles.get_implied(manager(request).db, prior_id, implied_id)
    return Response(status_code=204)


async def delete_implied(request: Request, prior_id: str, implied_id: str) -> Response:
    enforce(request, "identity:delete_implied_role")
    mgr = manager(request)
    await roles.delete_implied(mgr.db, prior_id, implied_id)
    mgr.invalidate()
    return Response(status_code=204)


async def list_inferences(request: Request) -> Response:
    enforce(request, "identity:list_role_inference_rules")
    by_id, rules = await roles.inference_rules(manager(request).db)
    grouped: dict[str, list[dict[str, Any]]] = {}
    for prior_id, implied_id in rules:
        grouped.setdefault(prior_id, []).append(_role_ref(request, by_id[implied_id]))
    return json_response({"role_inferences": [
        {"prior_role": _role_ref(request, by_id[prior]), "implies": implies} for prior, implies in grouped.items()],
        "links": link(request, "role_inferences")})


# ----- grants ----------------------------------------------------------------------------------------------
def _grant_target(grant: Grant) -> dict[str, Any]:
    """What grant policies test: the target project or domain (the domain of a target project is not loaded)."""
    if grant.target_kind == "domains":
        return {"domain": {"id": grant.target_id}}
    if grant.target_kind == "projects":
        return {"project": {"id": grant.target_id}}
    return {}


async def _put_grant(request: Request, grant: Grant, action: str = "identity:create_grant") -> Response:
    enforce(request, action, _grant_target(grant))
    mgr = manager(request)
    await grants.put_grant(mgr.db, grant)
    mgr.invalidate()
    return Response(status_code=204)


async def _head_grant(request: Request, grant: Grant, action: str = "identity:check_grant") -> Response:
    enforce(request, action, _grant_target(grant))
    await grants.check_grant(manager(request).db, grant)
    return Response(status_code=204)


async def _delete_grant(request: Request, grant: Grant, action: str = "identity:revoke_grant") -> Response:
    enforce(request, action, _grant_target(grant))
    mgr = manager(request)
    await grants.delete_grant(mgr.db, mgr, grant)
    mgr.invalidate()
    return Response(status_code=204)


async def put_grant(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                    role_id: str) -> Response:
    return await _put_grant(request, Grant(target_kind, target_id, actor_kind, actor_id, role_id, False))


async def head_grant(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                     role_id: str) -> Response:
    return await _head_grant(request, Grant(target_kind, target_id, actor_kind, actor_id, role_id, False))


async def delete_grant(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                       role_id: str) -> Response:
    return await _delete_grant(request, Grant(target_kind, target_id, actor_kind, actor_id, role_id, False))


async def put_inherited(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                        role_id: str) -> Response:
    return await _put_grant(request, Grant(target_kind, target_id, actor_kind, actor_id, role_id, True))


async def head_inherited(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                         role_id: str) -> Response:
    return await _head_grant(request, Grant(target_kind, target_id, actor_kind, actor_id, role_id, True))


async def delete_inherited(request: Request, target_kind: str, target_id: str, actor_kind: str, actor_id: str,
                           role_id: str) -> Response:
    return await _delete_grant(request, Grant(target_kind, target_id, actor_kind, actor_id, role_id, True))


def _system(actor_kind: str, actor_id: str, role_id: str | None) -> Grant:
    return Grant("system", SYSTEM_TARGET, actor_kind, actor_id, role_id, False)


async def put_system_grant(request: Request, actor_kind: str, actor_id: str, role_id: str) -> Response:
    return await _put_grant(request, _system(actor_kind, actor_id, role_id), "identity:create_system_grant")


async def head_system_grant(request: Request, actor_kind: str, actor_id: str, role_id: str) -> Response:
    return await _head_grant(request, _system(actor_kind, actor_id, role_id), "identity:check_system_grant")


async def delete_system_grant(request: Request, actor_kind: str, actor_id: str, role_id: str) -> Response:
    return await _delete_grant(request, _system(actor_kind, actor_id, role_id), "identity:revoke_system_grant")


async def list_system_grants(request: Request, actor_kind: str, actor_id: str) -> Response:
    enforce(request, "identity:list_system_grants")
    rows = await grants.granted_roles(manager(request).db, _system(actor_kind, actor_id, None))
    return collection(request, "roles", [role_body(request, r) for r in rows])


async def list_inherited(request: Request, target_kind: str, target_id: str, actor_kind: str,
                         actor_id: str) -> Response:
    grant = Grant(target_kind, target_id, actor_kind, actor_id, None, True)
    enforce(request, "identity:list_grants", _grant_target(grant))
    rows = await grants.granted_roles(manager(request).db, grant)
    return collection(request, "roles", [role_body(request, r) for r in rows])


async def list_grants(request: Request, target_kind: str, target_id: str, actor_kind: str,
                      actor_id: str) -> Response:
    grant = Grant(target_kind, target_id, actor_kind, actor_id, None)
    enforce(request, "identity:list_grants", _grant_target(grant))
    rows = await grants.granted_roles(manager(request).db, grant)
    return collection(request, "roles", [role_body(request, r) for r in rows])


# ----- role assignments ------------------------------------------------------------------------------------
def _assignment_view(prefix: str, row: dict[str, Any], names: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    def ref(kind: str, ident: str) -> dict[str, Any]:
        return {"id": ident, **names.get((kind, ident), {})}

    actor_kind, actor_id = row["actor"]
    target_kind, target_id = row["target"]
    if target_kind == "system":
        scope: dict[str, Any] = {"system": {"all": True}}
        url = f"{prefix}/system/{actor_kind}s/{actor_id}/roles/{row['role']}"
    else:
        scope = {target_kind: ref(target_kind, target_id)}
        url = f"{prefix}/{target_kind}s/{target_id}/{actor_kind}s/{actor_id}/roles/{row['role']}"
    if row["inherited"]:
        scope["OS-INHERIT:inherited_to"] = "projects"
        url = f"{prefix}/OS-INHERIT{url[len(prefix):]}/inherited_to_projects"
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
    system = q.get("scope.system")
    if system is not None and system != "all":
        raise BadRequest("Invalid input: 'scope.system' must be 'all'.")
    inherited_only = q.get("scope.OS-INHERIT:inherited_to") == "projects"
    if effective and group_id:
        raise BadRequest("Invalid input: 'effective' cannot be combined with 'group.id'.")
    if project_id and domain_id:
        raise BadRequest("Invalid input: give at most one of 'scope.project.id' and 'scope.domain.id'.")
    rows, names = await grants.role_assignments(manager(request).db, effective=effective,
                                                include_names=include_names)

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
        if system and row["target"][0] != "system":
            return False
        return not (inherited_only and not row["inherited"])

    rows = [r for r in rows if keep(r)]
    prefix = base(request)
    result = [_assignment_view(prefix, row, names) for row in rows]
    return collection(request, "role_assignments", result)
