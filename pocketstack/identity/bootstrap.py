"""First-start bootstrap (like `keystone-manage bootstrap` plus DevStack's accounts), idempotent on every start.

Creates the Default domain, roles admin > manager > member > reader (implied) and service, projects admin, demo and
service, users admin and demo, and keeps the catalog's endpoints in step with the running services' URLs.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.service import ServiceSpec, save_passwords, stored_passwords
from pocketstack.common.timeutils import utcnow
from pocketstack.identity import models as m
from pocketstack.identity.service import DEFAULT_DOMAIN_ID, IdentityManager, new_id
from pocketstack.identity.store.roles import SYSTEM_TARGET
from pocketstack.settings import Settings


async def _ensure_role(session: AsyncSession, name: str) -> m.Role:
    role = await session.scalar(select(m.Role).where(m.Role.name == name, m.Role.domain_id.is_(None)))
    if role is None:
        role = m.Role(id=new_id(), name=name, description="")
        session.add(role)
        await session.flush()
    return role


async def _ensure_project(session: AsyncSession, name: str, description: str) -> m.Project:
    project = await session.scalar(select(m.Project).where(m.Project.name == name,
                                                           m.Project.domain_id == DEFAULT_DOMAIN_ID))
    if project is None:
        project = m.Project(id=new_id(), name=name, domain_id=DEFAULT_DOMAIN_ID, description=description,
                            tags=[], extra={})
        session.add(project)
        await session.flush()
    return project


async def _grant(session: AsyncSession, user: m.User, project: m.Project, role: m.Role) -> None:
    key = ("UserProject", user.id, project.id, role.id, False)
    if await session.get(m.Assignment, key) is None:
        session.add(m.Assignment(type="UserProject", actor_id=user.id, target_id=project.id, role_id=role.id,
                                 inherited=False))


async def bootstrap(manager: IdentityManager, settings: Settings, specs: list[ServiceSpec]) -> dict[str, str]:
    """Make sure the base accounts and the catalog exist; return the passwords created on this start."""
    created: dict[str, str] = {}  # printed once: admin and demo

    async def seed(session: AsyncSession) -> None:
        dirty = False
        # identity processes starting at once (API workers, distributed mode) bootstrap one after the other
        await manager.db.lock(await session.connection(), "identity_bootstrap")
        passwords = stored_passwords(settings.data_dir)
        if await session.get(m.Domain, DEFAULT_DOMAIN_ID) is None:
            session.add(m.Domain(id=DEFAULT_DOMAIN_ID, name="Default", description="The default domain",
                                 extra={}))
            await session.flush()
        roles = {name: await _ensure_role(session, name)
                 for name in ("admin", "manager", "member", "reader", "service")}
        for prior, implied in (("admin", "manager"), ("manager", "member"), ("member", "reader")):
            key = (roles[prior].id, roles[implied].id)
            if await session.get(m.ImpliedRole, key) is None:
                session.add(m.ImpliedRole(prior_role_id=key[0], implied_role_id=key[1]))
        projects = {
            "admin": await _ensure_project(session, "admin", "Bootstrap project for the admin user"),
            "demo": await _ensure_project(session, "demo", "Project of the demo user"),
            "service": await _ensure_project(session, "service", "Project of the service users"),
        }
        for username, project_name, role_name in (("admin", "admin", "admin"), ("demo", "demo", "member")):
            user = await session.scalar(select(m.User).where(m.User.name == username,
                                                             m.User.domain_id == DEFAULT_DOMAIN_ID))
            if user is None:
                configured = getattr(settings.identity, f"{username}_password")
                password = configured or passwords.get(username) or secrets.token_urlsafe(16)
                if not configured:
                    passwords[username] = password
                    created[username] = password
                user = m.User(id=new_id(), name=username, domain_id=DEFAULT_DOMAIN_ID,
                              password_hash=await manager.hash_secret(password), enabled=True,
                              default_project_id=projects[project_name].id, description="", extra={},
                              created_at=utcnow(), password_changed_at=utcnow())
                session.add(user)
                await session.flush()
                await _grant(session, user, projects[project_name], roles[role_name])
            if username == "admin":  # as keystone-manage bootstrap: the admin is also the system's admin
                key = ("UserSystem", user.id, SYSTEM_TARGET, roles["admin"].id, False)
                if await session.get(m.Assignment, key) is None:
                    session.add(m.Assignment(type="UserSystem", actor_id=user.id, target_id=SYSTEM_TARGET,
                                             role_id=roles["admin"].id, inherited=False))
        for spec in specs:
            if spec.service_user:
                password = await _ensure_service_user(manager, session, settings, spec, passwords, projects["service"],
                                                      (roles["admin"], roles["service"]))
                if password:
                    passwords[spec.service_user] = password
                    dirty = True
        await _sync_catalog(session, settings, specs)
        for spec in specs:  # the secrets services share (the metadata proxy's), unless configured
            key = spec.shared_secret
            if key and not getattr(settings.service(spec.name), "shared_secret", None) and key not in passwords:
                passwords[key] = secrets.token_urlsafe(24)
                dirty = True
        if created or dirty:  # still under the lock: the next process to bootstrap reads them
            save_passwords(settings.data_dir, passwords)

    await manager.db.run(seed, write=True)
    manager.invalidate()
    return created


async def _ensure_service_user(manager: IdentityManager, session: AsyncSession, settings: Settings, spec: ServiceSpec,
                               passwords: dict[str, str], project: m.Project, roles: tuple[m.Role, ...]) -> str | None:
    """The user a service authenticates as (admin and service roles on project `service`); returns a new password."""
    name = spec.service_user
    assert name is not None
    if await session.scalar(select(m.User).where(m.User.name == name, m.User.domain_id == DEFAULT_DOMAIN_ID)):
        return None
    configured = getattr(settings.service(spec.name), "service_password", None)
    password = configured or passwords.get(name) or secrets.token_urlsafe(16)
    password_hash = await manager.hash_secret(password)
    user = m.User(id=new_id(), name=name, domain_id=DEFAULT_DOMAIN_ID, password_hash=password_hash, enabled=True,
                  default_project_id=project.id, description=f"service user of {spec.name}", extra={},
                  created_at=utcnow(), password_changed_at=utcnow())
    session.add(user)
    await session.flush()
    for role in roles:
        await _grant(session, user, project, role)
    return None if configured else password


async def _sync_catalog(session: AsyncSession, settings: Settings, specs: list[ServiceSpec]) -> None:
    if await session.get(m.Region, settings.region) is None:
        session.add(m.Region(id=settings.region, description="", extra={}))
        await session.flush()
    for spec in specs:
        if spec.catalog_type is None:
            continue
        for catalog_type in (spec.catalog_type, *spec.extra_types):
            service = await session.scalar(select(m.CatalogService).where(m.CatalogService.type == catalog_type))
            if service is None:
                service = m.CatalogService(id=new_id(), type=catalog_type, name=spec.catalog_name,
                                           description=f"pocketstack {spec.name}", enabled=True)
                session.add(service)
                await session.flush()
            url = settings.base_url(spec.name) + spec.url_path
            for interface in ("public", "internal", "admin"):
                endpoint = await session.scalar(select(m.Endpoint).where(
                    m.Endpoint.service_id == service.id, m.Endpoint.interface == interface,
                    m.Endpoint.region_id == settings.region))
                if endpoint is None:
                    session.add(m.Endpoint(id=new_id(), service_id=service.id, interface=interface,
                                           region_id=settings.region, url=url, enabled=True))
                elif endpoint.url != url:
                    endpoint.url = url
