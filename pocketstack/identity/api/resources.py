"""Domains, projects, users (and password change), groups and membership."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import Field, StrictBool

from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Unauthorized
from pocketstack.identity.api.common import (
    Open,
    Strict,
    collection,
    domain_body,
    enforce,
    extra_of,
    group_body,
    link,
    manager,
    parse_bool,
    project_body,
    user_body,
    wrapped,
)
from pocketstack.identity.api.tags import check_tags
from pocketstack.identity.service import DEFAULT_DOMAIN_ID
from pocketstack.identity.store import domains, groups, projects, users
from pocketstack.identity.store.common import Domain, Group, Project, User, fetch
from pocketstack.identity.store.resources import find

# What catalog, roles and application credentials take from here until they have their own store.


def _given(data: Open | Strict, *attrs: str) -> dict[str, Any]:
    """The attributes of an update body among `attrs` that are not None."""
    return {attr: value for attr in attrs if (value := getattr(data, attr)) is not None}


async def _enforce_on(request: Request, action: str, model: Any, entity_id: str, kind: str) -> Any:
    """Enforce `action` on an existing `kind` (its id and domain in the target); 404 when there is none."""
    row = await fetch(manager(request).db, model, entity_id, kind)
    enforce(request, action, {kind: {"id": entity_id, "domain_id": row.domain_id}})
    return row


def _owner_domain(ctx: RequestContext, domain_id: str | None) -> str:
    """The domain of a new project, user or group: the one given, else the caller's scope's, else the default."""
    return domain_id or ctx.project_domain_id or ctx.user_domain_id or DEFAULT_DOMAIN_ID


# ----- domains ---------------------------------------------------------------------------------------------
class DomainCreate(Open):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = ""
    enabled: StrictBool = True


class DomainUpdate(Open):
    name: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = None
    enabled: StrictBool | None = None


async def create_domain(request: Request) -> Response:
    enforce(request, "identity:create_domain")
    data = DomainCreate.model_validate(wrapped(await json_body(request), "domain"))
    mgr = manager(request)
    domain = await domains.create(mgr.db, name=data.name, description=data.description or "", enabled=data.enabled,
                                  extra=extra_of(data, {"id", "tags", "options", "explicit_domain_id"}))
    mgr.invalidate()
    return json_response({"domain": domain_body(request, domain)}, status=201)


async def list_domains(request: Request, name: str | None = None, enabled: str | None = None) -> Response:
    enforce(request, "identity:list_domains")
    rows = await find(manager(request).db, Domain, name=name, enabled=parse_bool(enabled))
    return collection(request, "domains", [domain_body(request, d) for d in rows])


async def get_domain(request: Request, domain_id: str) -> Response:
    enforce(request, "identity:get_domain", {"domain": {"id": domain_id}})
    domain = await fetch(manager(request).db, Domain, domain_id, "domain")
    return json_response({"domain": domain_body(request, domain)})


async def update_domain(request: Request, domain_id: str) -> Response:
    enforce(request, "identity:update_domain", {"domain": {"id": domain_id}})
    data = DomainUpdate.model_validate(wrapped(await json_body(request), "domain"))
    mgr = manager(request)
    domain = await domains.update(mgr, domain_id, DEFAULT_DOMAIN_ID, attrs=_given(data, "name", "description"),
                                  enabled=data.enabled, extra=extra_of(data, {"id"}))
    mgr.invalidate()
    return json_response({"domain": domain_body(request, domain)})


async def delete_domain(request: Request, domain_id: str) -> Response:
    enforce(request, "identity:delete_domain", {"domain": {"id": domain_id}})
    await domains.remove(manager(request), domain_id)
    return Response(status_code=204)


# ----- projects --------------------------------------------------------------------------------------------
class ProjectCreate(Open):
    name: str = Field(min_length=1, max_length=64)
    domain_id: str | None = None
    parent_id: str | None = None
    description: str | None = ""
    enabled: StrictBool = True
    is_domain: StrictBool = False
    tags: list[Any] = []


class ProjectUpdate(Open):
    name: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = None
    enabled: StrictBool | None = None
    tags: list[Any] | None = None


async def create_project(request: Request) -> Response:
    data = ProjectCreate.model_validate(wrapped(await json_body(request), "project"))
    ctx = enforce(request, "identity:create_project",
                  {"project": {"domain_id": data.domain_id or _owner_domain(request_context(request), None)}})
    mgr = manager(request)
    if data.is_domain:  # a project acting as a domain is a domain, shown as a project
        if data.parent_id or data.domain_id:
            raise BadRequest("Invalid input: a project acting as a domain has no parent and no domain.")
        enforce(request, "identity:create_domain")
        domain = await domains.create(mgr.db, name=data.name, description=data.description or "",
                                      enabled=data.enabled, extra=extra_of(data, {"id", "options", "tags"}))
        mgr.invalidate()
        return json_response({"project": _domain_as_project(request, domain)}, status=201)
    project = await projects.create(mgr.db, name=data.name, domain_id=data.domain_id, parent_id=data.parent_id,
                                    fallback_domain_id=_owner_domain(ctx, None), description=data.description or "",
                                    enabled=data.enabled, tags=check_tags(data.tags),
                                    extra=extra_of(data, {"id", "options"}))
    mgr.invalidate()
    return json_response({"project": project_body(request, project)}, status=201)


async def list_projects(request: Request, name: str | None = None, domain_id: str | None = None,
                        enabled: str | None = None, parent_id: str | None = None) -> Response:
    enforce(request, "identity:list_projects", {"project": {"domain_id": domain_id}})
    if parse_bool(request.query_params.get("is_domain")):
        found = await find(manager(request).db, Domain, name=name, enabled=parse_bool(enabled))
        return collection(request, "projects", [_domain_as_project(request, d) for d in found])
    rows = await find(manager(request).db, Project, name=name, domain_id=domain_id, parent_id=parent_id,
                      enabled=parse_bool(enabled))
    rows = [p for p in rows if _tags_match(request, set(p.tags or []))]
    return collection(request, "projects", [project_body(request, p) for p in rows])


def _tags_match(request: Request, tags: set[str]) -> bool:
    """The project list's tag filters: `tags` (all of), `tags-any`, `not-tags` (not all of), `not-tags-any`."""
    def wanted(name: str) -> set[str] | None:
        value = request.query_params.get(name)
        return None if value is None else {t for t in value.split(",") if t}
    every, any_, not_every, not_any = (wanted(n) for n in ("tags", "tags-any", "not-tags", "not-tags-any"))
    return ((every is None or every <= tags) and (any_ is None or bool(any_ & tags))
            and (not_every is None or not not_every <= tags) and (not_any is None or not not_any & tags))


def _domain_as_project(request: Request, d: Domain) -> dict[str, Any]:
    return {**(d.extra or {}), "id": d.id, "name": d.name, "domain_id": None, "description": d.description,
            "enabled": d.enabled, "parent_id": None, "is_domain": True, "tags": [], "options": {},
            "links": link(request, f"projects/{d.id}")}


async def _acting_domain(request: Request, project_id: str) -> Domain | None:
    """The domain `project_id` names when it is no project (a project acting as a domain), else None."""
    found = await find(manager(request).db, Project, id=project_id)
    if found:
        return None
    domains_found = await find(manager(request).db, Domain, id=project_id)
    return domains_found[0] if domains_found else None


async def get_project(request: Request, project_id: str) -> Response:
    if (domain := await _acting_domain(request, project_id)) is not None:
        enforce(request, "identity:get_domain", {"domain": {"id": domain.id}})
        return json_response({"project": _domain_as_project(request, domain)})
    project = await fetch(manager(request).db, Project, project_id, "project")
    enforce(request, "identity:get_project", {"project": {"id": project_id, "domain_id": project.domain_id}})
    return json_response({"project": project_body(request, project)})


async def update_project(request: Request, project_id: str) -> Response:
    data = ProjectUpdate.model_validate(wrapped(await json_body(request), "project"))
    mgr = manager(request)
    if (domain := await _acting_domain(request, project_id)) is not None:
        enforce(request, "identity:update_domain", {"domain": {"id": domain.id}})
        domain = await domains.update(mgr, project_id, DEFAULT_DOMAIN_ID, attrs=_given(data, "name", "description"),
                                      enabled=data.enabled, extra=extra_of(data, {"id", "domain_id", "options"}))
        mgr.invalidate()
        return json_response({"project": _domain_as_project(request, domain)})
    await _enforce_on(request, "identity:update_project", Project, project_id, "project")
    if data.tags is not None:
        data.tags = check_tags(data.tags)
    mgr = manager(request)
    project = await projects.update(mgr, project_id, attrs=_given(data, "name", "description", "tags"),
                                    enabled=data.enabled, extra=extra_of(data, {"id", "domain_id", "options"}))
    mgr.invalidate()
    return json_response({"project": project_body(request, project)})


async def delete_project(request: Request, project_id: str) -> Response:
    if await _acting_domain(request, project_id) is not None:
        enforce(request, "identity:delete_domain", {"domain": {"id": project_id}})
        await domains.remove(manager(request), project_id)
        return Response(status_code=204)
    await _enforce_on(request, "identity:delete_project", Project, project_id, "project")
    await projects.remove(manager(request), project_id)
    return Response(status_code=204)


# ----- users -----------------------------------------------------------------------------------------------
class UserCreate(Open):
    name: str = Field(min_length=1, max_length=255)
    domain_id: str | None = None
    password: str | None = None
    enabled: StrictBool = True
    default_project_id: str | None = None
    description: str | None = ""
    email: str | None = None


class UserUpdate(Open):
    name: str | None = Field(None, min_length=1, max_length=255)
    password: str | None = None
    enabled: StrictBool | None = None
    default_project_id: str | None = None
    description: str | None = None
    email: str | None = None


async def create_user(request: Request) -> Response:
    data = UserCreate.model_validate(wrapped(await json_body(request), "user"))
    ctx = enforce(request, "identity:create_user",
                  {"user": {"domain_id": _owner_domain(request_context(request), data.domain_id)}})
    mgr = manager(request)
    password_hash = await mgr.hash_secret(data.password) if data.password else None
    user = await users.create(mgr.db, name=data.name, domain_id=_owner_domain(ctx, data.domain_id),
                              password_hash=password_hash, enabled=data.enabled,
                              default_project_id=data.default_project_id, description=data.description or "",
                              email=data.email, extra=extra_of(data, {"id", "options", "federated"}))
    mgr.invalidate()
    return json_response({"user": user_body(request, user)}, status=201)


async def list_users(request: Request, name: str | None = None, domain_id: str | None = None,
                     enabled: str | None = None) -> Response:
    enforce(request, "identity:list_users", {"user": {"domain_id": domain_id}})
    rows = await find(manager(request).db, User, name=name, domain_id=domain_id, enabled=parse_bool(enabled))
    return collection(request, "users", [user_body(request, u) for u in rows])


async def get_user(request: Request, user_id: str) -> Response:
    user = await fetch(manager(request).db, User, user_id, "user")
    enforce(request, "identity:get_user", {"user": {"id": user_id, "domain_id": user.domain_id}})
    return json_response({"user": user_body(request, user)})


async def update_user(request: Request, user_id: str) -> Response:
    await _enforce_on(request, "identity:update_user", User, user_id, "user")
    data = UserUpdate.model_validate(wrapped(await json_body(request), "user"))
    mgr = manager(request)
    password_hash = await mgr.hash_secret(data.password) if data.password else None
    attrs = _given(data, "name", "description", "email")
    if "default_project_id" in data.model_fields_set:
        attrs["default_project_id"] = data.default_project_id
    user = await users.update(mgr, user_id, attrs=attrs, enabled=data.enabled, password_hash=password_hash,
                              extra=extra_of(data, {"id", "domain_id", "options"}))
    mgr.invalidate()
    return json_response({"user": user_body(request, user)})


async def delete_user(request: Request, user_id: str) -> Response:
    await _enforce_on(request, "identity:delete_user", User, user_id, "user")
    await users.remove(manager(request), user_id)
    return Response(status_code=204)


class PasswordChange(Strict):
    password: str = Field(min_length=1)
    original_password: str


async def change_password(request: Request, user_id: str) -> Response:
    enforce(request, "identity:change_password", {"user": {"id": user_id}})
    data = PasswordChange.model_validate(wrapped(await json_body(request), "user"))
    mgr = manager(request)
    current_hash = await users.password_hash_of(mgr.db, user_id)
    if not await mgr.check_secret(data.original_password, current_hash):
        raise Unauthorized("The original password is incorrect.")
    await users.set_password(mgr, user_id, await mgr.hash_secret(data.password))
    return Response(status_code=204)


async def list_user_projects(request: Request, user_id: str) -> Response:
    enforce(request, "identity:list_user_projects", {"user": {"id": user_id}})
    mine = await users.projects_of(manager(request), user_id)
    return collection(request, "projects", [project_body(request, p) for p in mine])


async def list_user_groups(request: Request, user_id: str) -> Response:
    enforce(request, "identity:list_groups_for_user", {"user": {"id": user_id}})
    rows = await groups.of_user(manager(request).db, user_id)
    return collection(request, "groups", [group_body(request, g) for g in rows])


# ----- groups ----------------------------------------------------------------------------------------------
class GroupCreate(Open):
    name: str = Field(min_length=1, max_length=64)
    domain_id: str | None = None
    description: str | None = ""


class GroupUpdate(Open):
    name: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = None


async def create_group(request: Request) -> Response:
    data = GroupCreate.model_validate(wrapped(await json_body(request), "group"))
    ctx = enforce(request, "identity:create_group",
                  {"group": {"domain_id": _owner_domain(request_context(request), data.domain_id)}})
    group = await groups.create(manager(request).db, name=data.name, domain_id=_owner_domain(ctx, data.domain_id),
                                description=data.description or "", extra=extra_of(data, {"id"}))
    return json_response({"group": group_body(request, group)}, status=201)


async def list_groups(request: Request, name: str | None = None, domain_id: str | None = None) -> Response:
    enforce(request, "identity:list_groups", {"group": {"domain_id": domain_id}})
    rows = await find(manager(request).db, Group, name=name, domain_id=domain_id)
    return collection(request, "groups", [group_body(request, g) for g in rows])


async def get_group(request: Request, group_id: str) -> Response:
    group = await _enforce_on(request, "identity:get_group", Group, group_id, "group")
    return json_response({"group": group_body(request, group)})


async def update_group(request: Request, group_id: str) -> Response:
    await _enforce_on(request, "identity:update_group", Group, group_id, "group")
    data = GroupUpdate.model_validate(wrapped(await json_body(request), "group"))
    group = await groups.update(manager(request).db, group_id, _given(data, "name", "description"),
                                extra_of(data, {"id", "domain_id"}))
    return json_response({"group": group_body(request, group)})


async def delete_group(request: Request, group_id: str) -> Response:
    await _enforce_on(request, "identity:delete_group", Group, group_id, "group")
    mgr = manager(request)
    await groups.remove(mgr, group_id)
    mgr.invalidate()
    return Response(status_code=204)


async def list_group_users(request: Request, group_id: str) -> Response:
    await _enforce_on(request, "identity:list_users_in_group", Group, group_id, "group")
    rows = await groups.members(manager(request).db, group_id)
    return collection(request, "users", [user_body(request, u) for u in rows])


async def add_group_user(request: Request, group_id: str, user_id: str) -> Response:
    await _enforce_on(request, "identity:add_user_to_group", Group, group_id, "group")
    mgr = manager(request)
    await groups.add_member(mgr.db, group_id, user_id)
    mgr.invalidate()
    return Response(status_code=204)


async def check_group_user(request: Request, group_id: str, user_id: str) -> Response:
    await _enforce_on(request, "identity:check_user_in_group", Group, group_id, "group")
    await groups.check_member(manager(request).db, group_id, user_id)
    return Response(status_code=204)


async def remove_group_user(request: Request, group_id: str, user_id: str) -> Response:
    await _enforce_on(request, "identity:remove_user_from_group", Group, group_id, "group")
    await groups.remove_member(manager(request), group_id, user_id)
    return Response(status_code=204)
