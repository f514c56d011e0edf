"""What `os-simple-tenant-usage` reads: the servers (deleted ones too) that were up at some time in a period, in
a stable order for paging, and the compute hosts the usage audit log reports on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest
from pocketstack.compute import models as m

COMPUTE = "nova-compute"

Instance = m.Instance  # the row type the usage views read


def _active_in(session: Session, start: datetime, stop: datetime, project_id: str | None, limit: int | None,
               marker: str | None) -> list[m.Instance]:
    query = (select(m.Instance).where(m.Instance.launched_at.is_not(None), m.Instance.launched_at < stop,
                                      or_(m.Instance.terminated_at.is_(None), m.Instance.terminated_at > start))
             .order_by(m.Instance.created_at, m.Instance.uuid))
    if project_id is not None:
        query = query.where(m.Instance.project_id == project_id)
    if marker is not None:
        after = session.get(m.Instance, marker)
        if after is None:
            raise BadRequest(f"marker [{marker}] not found")
        query = query.where(or_(m.Instance.created_at > after.created_at,
                                (m.Instance.created_at == after.created_at) & (m.Instance.uuid > after.uuid)))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query).all())


class UsageStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def active_instances(self, start: datetime, stop: datetime, *, project_id: str | None = None,
                               limit: int | None = None, marker: str | None = None) -> list[m.Instance]:
        """Servers launched before `stop` and not terminated before `start` (of one project when given), by
        creation; a page after the server `marker` (400 when unknown)."""
        return await self.db.run(lambda s: _active_in(s, start, stop, project_id, limit, marker), write=False)

    async def compute_hosts(self) -> list[str]:
        """The hosts of every nova-compute service, disabled ones too."""
        return await self.db.run(lambda s: sorted(s.scalars(select(m.ComputeService.host).where(
            m.ComputeService.binary == COMPUTE)).all()), write=False)
