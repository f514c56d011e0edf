"""Domains, projects, users (and password change), groups and membership."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import Field
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from pocketstack.identity import models as m
from pocketstack.identity.api.common import (
    Open,
    Strict,
    collection,
    domain_body,
    enforce,
    extra_of,
    group_body,
    manager,
    parse_bool,
    project_body,
    user_body,
)
from pocketstack.identity.service import DEFAULT_DOMAIN_ID, new_id, utcnow


def _wrapped(body: Any, key: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(f"Invalid input: '{key}' is a required property and must be an object.")
    return body[key]


async def _get(session: Any, model: type, entity_id: str, kind: str) -> Any:
    row = await session.get(model, entity_id)
    if row is None:
        raise NotFound(f"Could not find {kind}: {entity_id}.")
    return row


# ----- domains ---------------------------------------------------------------------------------------------
class DomainCreate(Open):
    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    enabled: bool = True


class DomainUpdate(Open):
    name: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = None
    enabled: bool | None = None


async def create_domain(request: Request) -> Response:
    enforce(request, "identity:create_domain")
    data = DomainCreate.model_validate(_wrapped(await json_body(request), "domain"))
    mgr = manager(request)
    try:
        async with mgr.db.session(write=True) as session:
            domain = m.Domain(id=new_id(), name=data.name, description=data.description, enabled=data.enabled,
                              extra=extra_of(data, {"id", "tags", "options", "explicit_domain_id"}))
            session.add(domain)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"Conflict occurred attempting to store domain - Duplicate entry found with name "
                       f"{data.name}.")
    mgr.invalidate()
    return json_response({"domain": domain_body(request, domain)}, status=201)


async def list_domains(request: Request, name: str | None = None, enabled: str | None = None) -> Response:
    enforce(request, "identity:list_domains")
    query = select(m.Domain).order_by(m.Domain.name)
    if name is not None:
        query = query.where(m.Domain.name == name)
    if (flag := parse_bool(enabled)) is not None:
        query = query.where(m.Domain.enabled.is_(flag))
    async with manager(request).db.session(write=False) as session:
        rows = (await session.scalars(query)).all()
    return collection(request, "domains", [domain_body(request, d) for d in rows])


async def get_domain(request: Request, domain_id: str) -> Response:
    enforce(request, "identity:get_domain", {"domain": {"id": domain_id}})
    async with manager(request).db.session(write=False) as session:
        domain = await _get(session, m.Domain, domain_id, "domain")
    return json_response({"domain": domain_body(request, domain)})


async def update_domain(request: Request, domain_id: str) -> Response:
    enforce(request, "identity:update_domain", {"domain": {"id": domain_id}})
    data = DomainUpdate.model_validate(_wrapped(await json_body(request), "domain"))
    mgr = manager(request)
    try:
        async with mgr.db.session(write=True) as session:
            domain = await _get(session, m.Domain, domain_id, "domain")
            if data.name is not None:
                domain.name = data.name
            if data.description is not None:
                domain.description = data.description
            if data.enabled is not None:
                if domain_id == DEFAULT_DOMAIN_ID and not data.enabled:
                    raise Forbidden("The default domain cannot be disabled.")
                if domain.enabled and not data.enabled:
                    await mgr.add_revocation(session, domain_id=domain_id)
                domain.enabled = data.enabled
            domain.extra = {**(domain.extra or {}), **extra_of(data, {"id"})}
            await session.flush()
    except IntegrityError:
        raise Conflict(f"Conflict occurred attempting to store domain - Duplicate entry found with name "
                       f"{data.name}.")
    mgr.invalidate()
    return json_response({"domain": domain_body(request, domain)})


async def delete_domain(request: Request, domain_id: str) -> Response:
    enforce(request, "identity:delete_domain", {"domain": {"id": domain_id}})
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        domain = await _get(session, m.Domain, domain_id, "domain")
        if domain.enabled:
            raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
        for model in (m.Project, m.User, m.Group):
            if await session.scalar(select(model.id).where(model.domain_id == domain_id).limit(1)):
                raise Conflict(f"Cannot delete domain {domain_id}: it still owns {model.__tablename__}.")
        await session.execute(delete(m.Assignment).where(m.Assignment.target_id == domain_id))
        await session.delete(domain)
        await mgr.add_revocation(session, domain_id=domain_id)
    return Response(status_code=204)


# ----- projects --------------------------------------------------------------------------------------------
class ProjectCreate(Open):
    name: str = Field(min_length=1, max_length=64)
    domain_id: str | None = None
    parent_id: str | None = None
    description: str = ""
    enabled: bool = True
    is_domain: bool = False
    tags: list[str] = []


class ProjectUpdate(Open):
    name: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = None
    enabled: bool | None = None
    tags: list[str] | None = None


async def create_project(request: Request) -> Response:
    ctx = enforce(request, "identity:create_project")
    data = ProjectCreate.model_validate(_wrapped(await json_body(request), "project"))
    if data.is_domain:
        raise BadRequest("Invalid input: projects acting as domains are not supported; create a domain.")
    mgr = manager(request)
    try:
        async with mgr.db.session(write=True) as session:
            domain_id = data.domain_id
            if data.parent_id:
                parent = await session.get(m.Project, data.parent_id)
                if parent is None:
                    raise BadRequest(f"Invalid input: parent project {data.parent_id} does not exist.")
                domain_id = domain_id or parent.domain_id
                if parent.domain_id != domain_id:
                    raise BadRequest("Invalid input: a project must be in the domain of its parent.")
            domain_id = domain_id or ctx.project_domain_id or ctx.user_domain_id or DEFAULT_DOMAIN_ID
            if await session.get(m.Domain, domain_id) is None:
                raise BadRequest(f"Invalid input: domain {domain_id} does not exist.")
            project = m.Project(id=new_id(), name=data.name, domain_id=domain_id,
                                parent_id=data.parent_id if data.parent_id != domain_id else None,
                                description=data.description, enabled=data.enabled, tags=data.tags,
                                extra=extra_of(data, {"id", "options"}))
            session.add(project)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"Conflict occurred attempting to store project - Duplicate entry found with name "
                       f"{data.name} at domain ID {domain_id}.")
    mgr.invalidate()
    return json_response({"project": project_body(request, project)}, status=201)


async def list_projects(request: Request, name: str | None = None, domain_id: str | None = None,
                        enabled: str | None = None, parent_id: str | None = None) -> Response:
    enforce(request, "identity:list_projects")
    query = select(m.Project).order_by(m.Project.name)
    if name is not None:
        query = query.where(m.Project.name == name)
    if domain_id is not None:
        query = query.where(m.Project.domain_id == domain_id)
    if parent_id is not None:
        query = query.where(m.Project.parent_id == parent_id)
    if (flag := parse_bool(enabled)) is not None:
        query = query.where(m.Project.enabled.is_(flag))
    async with manager(request).db.session(write=False) as session:
        rows = (await session.scalars(query)).all()
    return collection(request, "projects", [project_body(request, p) for p in rows])


async def get_project(request: Request, project_id: str) -> Response:
    enforce(request, "identity:get_project", {"project": {"id": project_id}})
    async with manager(request).db.session(write=False) as session:
        project = await _get(session, m.Project, project_id, "project")
    return json_response({"project": project_body(request, project)})


async def update_project(request: Request, project_id: str) -> Response:
    enforce(request, "identity:update_project", {"project": {"id": project_id}})
    data = ProjectUpdate.model_validate(_wrapped(await json_body(request), "project"))
    mgr = manager(request)
    try:
        async with mgr.db.session(write=True) as session:
            project = await _get(session, m.Project, project_id, "project")
            for attr in ("name", "description", "tags"):
                if (value := getattr(data, attr)) is not None:
                    setattr(project, attr, value)
            if data.enabled is not None:
                if project.enabled and not data.enabled:
                    await mgr.add_revocation(session, project_id=project_id)
                project.enabled = data.enabled
            project.extra = {**(project.extra or {}), **extra_of(data, {"id", "domain_id", "options"})}
            await session.flush()
    except IntegrityError:
        raise Conflict(f"Conflict occurred attempting to store project - Duplicate entry found with name "
                       f"{data.name}.")
    mgr.invalidate()
    return json_response({"project": project_body(request, project)})


async def delete_project(request: Request, project_id: str) -> Response:
    enforce(request, "identity:delete_project", {"project": {"id": project_id}})
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        project = await _get(session, m.Project, project_id, "project")
        if await session.scalar(select(m.Project.id).where(m.Project.parent_id == project_id).limit(1)):
            raise Forbidden("Cannot delete a project that has child projects.")
        await session.execute(delete(m.Assignment).where(m.Assignment.target_id == project_id))
        await session.delete(project)
        await mgr.add_revocation(session, project_id=project_id)
    return Response(status_code=204)


# ----- users -----------------------------------------------------------------------------------------------
class UserCreate(Open):
    name: str = Field(min_length=1, max_length=255)
    domain_id: str | None = None
    password: str | None = None
    enabled: bool = True
    default_project_id: str | None = None
    description: str = ""
    email: str | None = None


class UserUpdate(Open):
    name: str | None = Field(None, min_length=1, max_length=255)
    password: str | None = None
    enabled: bool | None = None
    default_project_id: str | None = None
    description: str | None = None
    email: str | None = None


async def create_user(request: Request) -> Response:
    ctx = enforce(request, "identity:create_user")
    data = UserCreate.model_validate(_wrapped(await json_body(request), "user"))
    mgr = manager(request)
    password_hash = await mgr.hash_secret(data.password) if data.password else None
    domain_id = data.domain_id or ctx.project_domain_id or ctx.user_domain_id or DEFAULT_DOMAIN_ID
    try:
        async with mgr.db.session(write=True) as session:
            if await session.get(m.Domain, domain_id) is None:
                raise BadRequest(f"Invalid input: domain {domain_id} does not exist.")
            if data.default_project_id and await session.get(m.Project, data.default_project_id) is None:
                raise BadRequest(f"Invalid input: project {data.default_project_id} does not exist.")
            user = m.User(id=new_id(), name=data.name, domain_id=domain_id, password_hash=password_hash,
                          enabled=data.enabled, default_project_id=data.default_project_id,
                          description=data.description, email=data.email, created_at=utcnow(),
                          password_changed_at=utcnow() if password_hash else None,
                          extra=extra_of(data, {"id", "options", "federated"}))
            session.add(user)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"Conflict occurred attempting to store user - Duplicate entry found with name "
                       f"{data.name} at domain ID {domain_id}.")
    mgr.invalidate()
    return json_response({"user": user_body(request, user)}, status=201)


async def list_users(request: Request, name: str | None = None, domain_id: str | None = None,
                     enabled: str | None = None) -> Response:
    enforce(request, "identity:list_users")
    query = select(m.User).order_by(m.User.name)
    if name is not None:
        query = query.where(m.User.name == name)
    if domain_id is not None:
        query = query.where(m.User.domain_id == domain_id)
    if (flag := parse_bool(enabled)) is not None:
        query = query.where(m.User.enabled.is_(flag))
    async with manager(request).db.session(write=False) as session:
        rows = (await session.scalars(query)).all()
    return collection(request, "users", [user_body(request, u) for u in rows])


async def get_user(request: Request, user_id: str) -> Response:
    enforce(request, "identity:get_user", {"user": {"id": user_id}})
    async with manager(request).db.session(write=False) as session:
        user = await _get(session, m.User, user_id, "user")
    return json_response({"user": user_body(request, user)})


async def update_user(request: Request, user_id: str) -> Response:
    enforce(request, "identity:update_user", {"user": {"id": user_id}})
    data = UserUpdate.model_validate(_wrapped(await json_body(request), "user"))
    mgr = manager(request)
    password_hash = await mgr.hash_secret(data.password) if data.password else None
    try:
        async with mgr.db.session(write=True) as session:
            user = await _get(session, m.User, user_id, "user")
            for attr in ("name", "description", "email"):
                if (value := getattr(data, attr)) is not None:
                    setattr(user, attr, value)
            if "default_project_id" in data.model_fields_set:
                if data.default_project_id and await session.get(m.Project, data.default_project_id) is None:
                    raise BadRequest(f"Invalid input: project {data.default_project_id} does not exist.")
                user.default_project_id = data.default_project_id
            revoke = False
            if data.enabled is not None:
                revoke = user.enabled and not data.enabled
                user.enabled = data.enabled
            if password_hash:
                user.password_hash = password_hash
                user.password_changed_at = utcnow()
                revoke = True
            if revoke:
                await mgr.add_revocation(session, user_id=user_id)
            user.extra = {**(user.extra or {}), **extra_of(data, {"id", "domain_id", "options"})}
            await session.flush()
    except IntegrityError:
        raise Conflict(f"Conflict occurred attempting to store user - Duplicate entry found with name "
                       f"{data.name}.")
    mgr.invalidate()
    return json_response({"user": user_body(request, user)})


async def delete_user(request: Request, user_id: str) -> Response:
    enforce(request, "identity:delete_user", {"user": {"id": user_id}})
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        user = await _get(session, m.User, user_id, "user")
        await session.execute(delete(m.Assignment).where(m.Assignment.actor_id == user_id))
        await session.execute(delete(m.Membership).where(m.Membership.user_id == user_id))
        await session.execute(delete(m.ApplicationCredential).where(m.ApplicationCredential.user_id == user_id))
        await session.delete(user)
        await mgr.add_revocation(session, user_id=user_id)
    return Response(status_code=204)


class PasswordChange(Strict):
    password: str = Field(min_length=1)
    original_password: str


async def change_password(request: Request, user_id: str) -> Response:
    enforce(request, "identity:change_password", {"user": {"id": user_id}})
    data = PasswordChange.model_validate(_wrapped(await json_body(request), "user"))
    mgr = manager(request)
    async with mgr.db.session(write=False) as session:
        user = await _get(session, m.User, user_id, "user")
        current_hash = user.password_hash
    if not await mgr.check_secret(data.original_password, current_hash):
        raise Unauthorized("The original password is incorrect.")
    new_hash = await mgr.hash_secret(data.password)
    async with mgr.db.session(write=True) as session:
        user = await _get(session, m.User, user_id, "user")
        user.password_hash = new_hash
        user.password_changed_at = utcnow()
        await mgr.add_revocation(session, user_id=user_id)
    return Response(status_code=204)


async def list_user_projects(request: Request, user_id: str) -> Response:
    enforce(request, "identity:list_user_projects", {"user": {"id": user_id}})
    mgr = manager(request)
    async with mgr.db.session(write=False) as session:
        await _get(session, m.User, user_id, "user")
        projects = (await session.scalars(select(m.Project).order_by(m.Project.name))).all()
        mine = [p for p in projects
                if await mgr.effective_role_ids(session, user_id, project_id=p.id, expand_implied=False)]
    return collection(request, "projects", [project_body(request, p) for p in mine])


async def list_user_groups(request: Request, user_id: str) -> Response:
    enforce(request, "identity:list_groups_for_user", {"user": {"id": user_id}})
    async with manager(request).db.session(write=False) as session:
        await _get(session, m.User, user_id, "user")
        rows = (await session.scalars(select(m.Group).join(m.Membership, m.Membership.group_id == m.Group.id)
                                      .where(m.Membership.user_id == user_id).order_by(m.Group.name))).all()
    return collection(request, "groups", [group_body(request, g) for g in rows])


# ----- groups ----------------------------------------------------------------------------------------------
class GroupCreate(Strict):
    name: str = Field(min_length=1, max_length=64)
    domain_id: str | None = None
    description: str = ""


class GroupUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = None


async def create_group(request: Request) -> Response:
    ctx = enforce(request, "identity:create_group")
    data = GroupCreate.model_validate(_wrapped(await json_body(request), "group"))
    domain_id = data.domain_id or ctx.project_domain_id or ctx.user_domain_id or DEFAULT_DOMAIN_ID
    mgr = manager(request)
    try:
        async with mgr.db.session(write=True) as session:
            if await session.get(m.Domain, domain_id) is None:
                raise BadRequest(f"Invalid input: domain {domain_id} does not exist.")
            group = m.Group(id=new_id(), name=data.name, domain_id=domain_id, description=data.description)
            session.add(group)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"Conflict occurred attempting to store group - Duplicate entry found with name "
                       f"{data.name} at domain ID {domain_id}.")
    return json_response({"group": group_body(request, group)}, status=201)


async def list_groups(request: Request, name: str | None = None, domain_id: str | None = None) -> Response:
    enforce(request, "identity:list_groups")
    query = select(m.Group).order_by(m.Group.name)
    if name is not None:
        query = query.where(m.Group.name == name)
    if domain_id is not None:
        query = query.where(m.Group.domain_id == domain_id)
    async with manager(request).db.session(write=False) as session:
        rows = (await session.scalars(query)).all()
    return collection(request, "groups", [group_body(request, g) for g in rows])


async def get_group(request: Request, group_id: str) -> Response:
    enforce(request, "identity:get_group")
    async with manager(request).db.session(write=False) as session:
        group = await _get(session, m.Group, group_id, "group")
    return json_response({"group": group_body(request, group)})


async def update_group(request: Request, group_id: str) -> Response:
    enforce(request, "identity:update_group")
    data = GroupUpdate.model_validate(_wrapped(await json_body(request), "group"))
    try:
        async with manager(request).db.session(write=True) as session:
            group = await _get(session, m.Group, group_id, "group")
            if data.name is not None:
                group.name = data.name
            if data.description is not None:
                group.description = data.description
            await session.flush()
    except IntegrityError:
        raise Conflict(f"Conflict occurred attempting to store group - Duplicate entry found with name "
                       f"{data.name}.")
    return json_response({"group": group_body(request, group)})


async def revoke_group_members(mgr: Any, session: Any, group_id: str, **match: str | None) -> None:
    """Implied revocation for every member of a group that lost a role."""
    user_ids = (await session.scalars(select(m.Membership.user_id).where(m.Membership.group_id == group_id))).all()
    for user_id in user_ids:
        await mgr.add_revocation(session, user_id=user_id, **match)


async def delete_group(request: Request, group_id: str) -> Response:
    enforce(request, "identity:delete_group")
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        group = await _get(session, m.Group, group_id, "group")
        if await session.scalar(select(m.Assignment.role_id).where(m.Assignment.actor_id == group_id).limit(1)):
            await revoke_group_members(mgr, session, group_id)
        await session.execute(delete(m.Assignment).where(m.Assignment.actor_id == group_id))
        await session.execute(delete(m.Membership).where(m.Membership.group_id == group_id))
        await session.delete(group)
    mgr.invalidate()
    return Response(status_code=204)


async def list_group_users(request: Request, group_id: str) -> Response:
    enforce(request, "identity:list_users_in_group")
    async with manager(request).db.session(write=False) as session:
        await _get(session, m.Group, group_id, "group")
        rows = (await session.scalars(select(m.User).join(m.Membership, m.Membership.user_id == m.User.id)
                                      .where(m.Membership.group_id == group_id).order_by(m.User.name))).all()
    return collection(request, "users", [user_body(request, u) for u in rows])


async def add_group_user(request: Request, group_id: str, user_id: str) -> Response:
    enforce(request, "identity:add_user_to_group")
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        await _get(session, m.Group, group_id, "group")
        await _get(session, m.User, user_id, "user")
        if await session.get(m.Membership, (user_id, group_id)) is None:
            session.add(m.Membership(user_id=user_id, group_id=group_id))
    mgr.invalidate()
    return Response(status_code=204)


async def check_group_user(request: Request, group_id: str, user_id: str) -> Response:
    enforce(request, "identity:check_user_in_group")
    async with manager(request).db.session(write=False) as session:
        await _get(session, m.Group, group_id, "group")
        await _get(session, m.User, user_id, "user")
        if await session.get(m.Membership, (user_id, group_id)) is None:
            raise NotFound(f"User {user_id} is not a member of group {group_id}.")
    return Response(status_code=204)


async def remove_group_user(request: Request, group_id: str, user_id: str) -> Response:
    enforce(request, "identity:remove_user_from_group")
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        membership = await session.get(m.Membership, (user_id, group_id))
        if membership is None:
            raise NotFound(f"User {user_id} is not a member of group {group_id}.")
        await session.delete(membership)
        await mgr.add_revocation(session, user_id=user_id)
    return Response(status_code=204)
