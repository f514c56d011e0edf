"""Server groups (`/os-server-groups`) and their members, under the project's server_groups quota."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import Forbidden, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute.store.quotas import project_limits_sync
from pocketstack.settings import Settings

ServerGroup = m.ServerGroup  # the row type the API's views render


def _members(session: Session, uuids: list[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {u: [] for u in uuids}
    if uuids:
        for row in session.scalars(select(m.ServerGroupMember).where(
                m.ServerGroupMember.group_uuid.in_(uuids)).order_by(m.ServerGroupMember.instance_uuid)).all():
            result[row.group_uuid].append(row.instance_uuid)
    return result


def _get(session: Session, group_id: str, ctx: RequestContext) -> m.ServerGroup:
    """The group as the caller may see it (admins: any, others: their project's); 404 otherwise."""
    group = session.get(m.ServerGroup, group_id)
    if group is None or (not ctx.is_admin and group.project_id != ctx.project_id):
        raise NotFound(f"Instance group {group_id} could not be found.")
    return group


class ServerGroupStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, settings: Settings, ctx: RequestContext, name: str, policy: str,
                     rules: dict[str, Any]) -> m.ServerGroup:
        """A new group of the caller's project; 403 over the project's server_groups quota."""

        def create(session: Session) -> m.ServerGroup:
            limit = project_limits_sync(session, settings, ctx.project_id)["server_groups"]
            count = session.scalar(select(func.count()).select_from(m.ServerGroup).where(
                m.ServerGroup.project_id == ctx.project_id))
            if 0 <= limit <= count:
                raise Forbidden("Quota exceeded, too many server groups.")
            group = m.ServerGroup(uuid=str(uuidlib.uuid4()), name=name, policy=policy, rules=rules,
                                  project_id=ctx.project_id, user_id=ctx.user_id, created_at=utcnow())
            session.add(group)
            return group

        return await self.db.run(create, write=True)

    async def page(self, project_id: str | None, offset: int | None, limit: int | None
                   ) -> tuple[list[m.ServerGroup], dict[str, list[str]]]:
        """Groups (of `project_id`, or all when None) by creation, with their members by group uuid."""

        def read(session: Session) -> tuple[list[m.ServerGroup], dict[str, list[str]]]:
            query = select(m.ServerGroup).order_by(m.ServerGroup.created_at, m.ServerGroup.uuid)
            if project_id is not None:
                query = query.where(m.ServerGroup.project_id == project_id)
            query = query.offset(offset or 0)
            if limit is not None:
                query = query.limit(limit)
            groups = list(session.scalars(query).all())
            return groups, _members(session, [g.uuid for g in groups])

        return await self.db.run(read, write=False)

    async def get(self, group_id: str, ctx: RequestContext,
                  authorize: Callable[[m.ServerGroup], object]) -> tuple[m.ServerGroup, list[str]]:
        """A group the caller may see and its members; `authorize(group)` raises when the caller may not."""

        def read(session: Session) -> tuple[m.ServerGroup, list[str]]:
            group = _get(session, group_id, ctx)
            authorize(group)
            return group, _members(session, [group.uuid])[group.uuid]

        return await self.db.run(read, write=False)

    async def delete(self, group_id: str, ctx: RequestContext, authorize: Callable[[m.ServerGroup], object]) -> None:
        """Delete a group and its memberships; `authorize(group)` raises when the caller may not."""

        def remove(session: Session) -> None:
            group = _get(session, group_id, ctx)
            authorize(group)
            session.execute(delete(m.ServerGroupMember).where(m.ServerGroupMember.group_uuid == group.uuid))
            session.delete(group)

        await self.db.run(remove, write=True)
