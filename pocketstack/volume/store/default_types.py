"""Projects' own default volume types (3.62)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import NotFound
from pocketstack.settings import Settings
from pocketstack.volume import models as m
from pocketstack.volume.store.lookups import resolve_type


def _own(session: Session, project_id: str) -> m.ProjectDefaultType:
    row = session.get(m.ProjectDefaultType, project_id)
    if row is None:
        raise NotFound(f"Default type for project {project_id} could not be found.")
    return row


async def set_default(db: Database, settings: Settings, ctx: RequestContext, project_id: str,
                      type_ref: str) -> m.ProjectDefaultType:
    """Make the type `type_ref` (id or name, as `ctx` may use it) the project's default."""
    def write(session: Session) -> m.ProjectDefaultType:
        vtype = resolve_type(session, type_ref, ctx, settings)
        row = session.get(m.ProjectDefaultType, project_id)
        if row is None:
            row = m.ProjectDefaultType(project_id=project_id, volume_type_id=vtype.id)
            session.add(row)
        row.volume_type_id = vtype.id
        return row
    return await db.run(write, write=True)


async def get_default(db: Database, project_id: str) -> m.ProjectDefaultType:
    return await db.run(lambda s: _own(s, project_id), write=False)


async def list_defaults(db: Database) -> list[m.ProjectDefaultType]:
    query = select(m.ProjectDefaultType).order_by(m.ProjectDefaultType.project_id)
    return await db.run(lambda s: list(s.scalars(query).all()), write=False)


async def unset_default(db: Database, project_id: str) -> None:
    await db.run(lambda s: s.delete(_own(s, project_id)), write=True)
