"""User messages: why an asynchronous operation failed, kept until they expire."""

from __future__ import annotations

from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.volume import models as m
from pocketstack.volume.store.lookups import Authorize, is_uuid, project_rows


def _visible(session: Session, message_id: str, ctx: RequestContext) -> m.Message:
    msg = session.get(m.Message, message_id) if is_uuid(message_id) else None
    if msg is None or msg.expires_at < utcnow() or (not ctx.is_admin and msg.project_id != ctx.project_id):
        raise NotFound(f"Message {message_id} could not be found.")
    return msg


async def list_messages(db: Database, project_id: str | None) -> list[m.Message]:
    """The messages not expired yet, of `project_id` (None: of every project)."""
    return await project_rows(db, m.Message, project_id, m.Message.expires_at >= utcnow())


async def get_message(db: Database, message_id: str, ctx: RequestContext) -> m.Message:
    return await db.run(lambda s: _visible(s, message_id, ctx), write=False)


async def delete_message(db: Database, message_id: str, ctx: RequestContext, authorize: Authorize) -> None:
    def write(session: Session) -> None:
        msg = _visible(session, message_id, ctx)
        authorize(msg)
        session.delete(msg)
    await db.run(write, write=True)
