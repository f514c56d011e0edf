"""The `instance_actions` rows (and their events): what was done to a server, by whom, under which request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m

# Called with the instance row (None: no such row, deleted ones included): raises to refuse, inside the transaction.
InstanceCheck = Callable[[Any], None]


def record_action(session: Session, instance_uuid: str, action: str, ctx: RequestContext, project_id: str) -> None:
    """A started action on an instance, as os-instance-actions lists it (`project_id`: the caller's when unset)."""
    session.add(m.InstanceAction(instance_uuid=instance_uuid, action=action, request_id=ctx.request_id,
                                 project_id=ctx.project_id or project_id, user_id=ctx.user_id or "",
                                 start_time=utcnow()))


def _changed_between(query: Any, since: datetime | None, before: datetime | None) -> Any:
    changed = func.coalesce(m.InstanceAction.updated_at, m.InstanceAction.start_time)
    if since:
        query = query.where(changed >= since)
    if before:
        query = query.where(changed <= before)
    return query


class ActionStore:
    """Instance actions and events."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, instance_uuid: str, action: str, ctx: RequestContext, project_id: str) -> None:
        await self.db.run(lambda s: record_action(s, instance_uuid, action, ctx, project_id), write=True)

    async def actions(self, server_id: str, check: InstanceCheck, *, since: datetime | None,
                      before: datetime | None, marker: str | None, limit: int) -> list[m.InstanceAction]:
        """The server's actions, newest first, after the action of request `marker` (400 when it has none)."""
        def read(session: Session) -> list[m.InstanceAction]:
            check(session.get(m.Instance, server_id))
            query = _changed_between(select(m.InstanceAction).where(m.InstanceAction.instance_uuid == server_id),
                                     since, before)
            if marker is not None:
                row = session.scalar(select(m.InstanceAction).where(
                    m.InstanceAction.instance_uuid == server_id, m.InstanceAction.request_id == marker))
                if row is None:
                    raise BadRequest(f"Marker {marker} could not be found.")
                query = query.where(or_(m.InstanceAction.start_time < row.start_time,
                                        (m.InstanceAction.start_time == row.start_time)
                                        & (m.InstanceAction.id < row.id)))
            return list(session.scalars(query.order_by(m.InstanceAction.start_time.desc(),
                                                       m.InstanceAction.id.desc()).limit(limit)).all())

        return await self.db.run(read, write=False)

    async def action(self, server_id: str, request_id: str, check: InstanceCheck
                     ) -> tuple[m.Instance, m.InstanceAction, list[m.InstanceActionEvent]]:
        """The server, its action of `request_id` (404 when none) and that action's events, newest first."""
        def read(session: Session) -> tuple[m.Instance, m.InstanceAction, list[m.InstanceActionEvent]]:
            inst = session.get(m.Instance, server_id)
            check(inst)
            action = session.scalar(select(m.InstanceAction).where(
                m.InstanceAction.instance_uuid == server_id, m.InstanceAction.request_id == request_id))
            if action is None:
                raise NotFound(f"Action {request_id} on instance {server_id} not found")
            events = session.scalars(select(m.InstanceActionEvent).where(
                m.InstanceActionEvent.action_id == action.id).order_by(m.InstanceActionEvent.start_time.desc(),
                                                                       m.InstanceActionEvent.id.desc())).all()
            return inst, action, list(events)

        return await self.db.run(read, write=False)
