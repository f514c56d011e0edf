"""Compute quotas: the configured defaults under the `default` quota class, the per-project overrides (`quotas`)
and the per-user ones inside a project (`project_user_quotas`), and what a project (or user) holds."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest
from pocketstack.compute import models as m
from pocketstack.compute.quotas import ALL_RESOURCES, default_limits
from pocketstack.compute.store.instances import count_usage, usage_dict, usage_query
from pocketstack.settings import Settings

DEFAULT_CLASS = "default"


def class_limits_sync(session: Session, settings: Settings, class_name: str = DEFAULT_CLASS) -> dict[str, int]:
    """The configured defaults overridden by a quota class's rows (the `default` class is every project's base)."""
    limits = default_limits(settings)
    for row in session.scalars(select(m.QuotaClass).where(m.QuotaClass.class_name == class_name)).all():
        if row.resource in limits:
            limits[row.resource] = row.hard_limit
    return limits


def project_limits_sync(session: Session, settings: Settings, project_id: str) -> dict[str, int]:
    """The limits in force for a project (-1: unlimited), inside a `Database.run` transaction."""
    limits = class_limits_sync(session, settings)
    for row in session.scalars(select(m.Quota).where(m.Quota.project_id == project_id)).all():
        if row.resource in limits:
            limits[row.resource] = row.hard_limit
    return limits


def user_limits_sync(session: Session, settings: Settings, project_id: str, user_id: str) -> dict[str, int]:
    """The project's limits overridden by the user's rows in that project."""
    limits = project_limits_sync(session, settings, project_id)
    for row in session.scalars(select(m.ProjectUserQuota).where(
            m.ProjectUserQuota.project_id == project_id, m.ProjectUserQuota.user_id == user_id)).all():
        if row.resource in limits:
            limits[row.resource] = row.hard_limit
    return limits


def project_usage(session: Session, project_id: str, user_id: str | None,
                  only_user: bool = False) -> dict[str, int]:
    """What a project holds of every quota resource (key pairs count per user, as Nova counts them); with
    `only_user`, the servers of `user_id` only."""
    used = dict.fromkeys(ALL_RESOURCES, 0)
    if only_user and user_id:
        used.update(usage_dict(session.execute(usage_query(project_id).where(
            m.Instance.user_id == user_id)).one()))
    else:
        used.update(count_usage(session, project_id))
    groups = select(func.count()).select_from(m.ServerGroup).where(m.ServerGroup.project_id == project_id)
    if only_user and user_id:
        groups = groups.where(m.ServerGroup.user_id == user_id)
    used["server_groups"] = int(session.scalar(groups) or 0)
    if user_id:
        used["key_pairs"] = int(session.scalar(select(func.count()).select_from(m.KeyPair).where(
            m.KeyPair.user_id == user_id)) or 0)
    return used


def _set_rows(session: Session, model: type, key: dict[str, str], wanted: dict[str, int]) -> None:
    for resource, limit in wanted.items():
        row = session.get(model, {**key, "resource": resource})
        if row is None:
            session.add(model(**key, resource=resource, hard_limit=limit))
        else:
            row.hard_limit = limit
    session.flush()


class QuotaStore:
    """The quota rows and the usage they are checked against."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def limits(self, project_id: str, user_id: str | None = None) -> dict[str, int]:
        """The project's limits, or its user's when `user_id` is given."""
        def read(session: Session) -> dict[str, int]:
            if user_id:
                return user_limits_sync(session, self.settings, project_id, user_id)
            return project_limits_sync(session, self.settings, project_id)

        return await self.db.run(read, write=False)

    async def limits_and_usage(self, project_id: str, user_id: str | None,
                               only_user: bool = False) -> tuple[dict[str, int], dict[str, int]]:
        """The limits of a project and its usage (key pairs of `user_id`, none counted when None); with
        `only_user`, the user's limits and usage inside the project."""
        def read(session: Session) -> tuple[dict[str, int], dict[str, int]]:
            limits = (user_limits_sync(session, self.settings, project_id, user_id) if only_user and user_id
                      else project_limits_sync(session, self.settings, project_id))
            return limits, project_usage(session, project_id, user_id, only_user)

        return await self.db.run(read, write=False)

    async def update(self, project_id: str, wanted: dict[str, int], *, force: bool,
                     user_id: str | None = None) -> dict[str, int]:
        """Set the project's (or its user's) limits; unless `force`, 400 when one is below what is already used;
        a user's limit may not exceed the project's."""
        def write(session: Session) -> dict[str, int]:
            if not force:
                used = project_usage(session, project_id, user_id, only_user=bool(user_id))
                for resource, limit in wanted.items():
                    if 0 <= limit < used[resource]:
                        raise BadRequest(f"Quota limit {limit} for {resource} must be greater than or equal to "
                                         f"already used and reserved {used[resource]}.")
            if user_id:
                project = project_limits_sync(session, self.settings, project_id)
                for resource, limit in wanted.items():
                    if project[resource] >= 0 and (limit < 0 or limit > project[resource]):
                        raise BadRequest(f"Quota limit {limit} for {resource} must be less than or equal to "
                                         f"{project[resource]}.")
                _set_rows(session, m.ProjectUserQuota, {"project_id": project_id, "user_id": user_id}, wanted)
                return user_limits_sync(session, self.settings, project_id, user_id)
            _set_rows(session, m.Quota, {"project_id": project_id}, wanted)
            return project_limits_sync(session, self.settings, project_id)

        return await self.db.run(write, write=True)

    async def delete(self, project_id: str, user_id: str | None = None) -> None:
        """Back to the defaults: drop the project's overrides and its users' (or only one user's)."""
        def write(session: Session) -> None:
            users = delete(m.ProjectUserQuota).where(m.ProjectUserQuota.project_id == project_id)
            if user_id:
                session.execute(users.where(m.ProjectUserQuota.user_id == user_id))
                return
            session.execute(users)
            session.execute(delete(m.Quota).where(m.Quota.project_id == project_id))

        await self.db.run(write, write=True)

    async def class_limits(self, class_name: str) -> dict[str, int]:
        return await self.db.run(lambda s: class_limits_sync(s, self.settings, class_name), write=False)

    async def update_class(self, class_name: str, wanted: dict[str, int]) -> dict[str, int]:
        """Set a quota class's limits (the `default` class changes every project's defaults)."""
        def write(session: Session) -> dict[str, int]:
            _set_rows(session, m.QuotaClass, {"class_name": class_name}, wanted)
            return class_limits_sync(session, self.settings, class_name)

        return await self.db.run(write, write=True)

    async def defaults(self) -> dict[str, int]:
        """What a project without overrides gets: the configured defaults under the `default` class."""
        return await self.db.run(lambda s: class_limits_sync(s, self.settings), write=False)
