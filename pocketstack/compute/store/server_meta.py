"""A server's metadata items (within the metadata_items quota) and tags."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Forbidden, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute.store.quotas import project_limits_sync
from pocketstack.compute.store.servers import InstanceCheck, visible_instance
from pocketstack.settings import Settings


def _metadata(session: Session, uuid: str) -> dict[str, str]:
    rows = session.scalars(select(m.InstanceMetadata).where(
        m.InstanceMetadata.instance_uuid == uuid).order_by(m.InstanceMetadata.key)).all()
    return {r.key: r.value for r in rows}


def _tags(session: Session, uuid: str) -> list[str]:
    return list(session.scalars(select(m.InstanceTag.tag).where(
        m.InstanceTag.instance_uuid == uuid).order_by(m.InstanceTag.tag)).all())


class ServerMetaStore:
    """Metadata and tags of the servers a caller sees; `check` runs on the server row before anything is read or
    changed (policy, lock, state)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def _server(self, session: Session, server_id: str, ctx: RequestContext, check: InstanceCheck) -> m.Instance:
        inst = visible_instance(session, server_id, ctx)
        check(inst)
        return inst

    # ----- metadata -----------------------------------------------------------------------------------------
    async def metadata(self, server_id: str, ctx: RequestContext, check: InstanceCheck) -> dict[str, str]:
        return await self.db.run(lambda s: _metadata(s, self._server(s, server_id, ctx, check).uuid), write=False)

    async def metadata_item(self, server_id: str, ctx: RequestContext, check: InstanceCheck, key: str) -> str | None:
        def read(session: Session) -> str | None:
            row = session.get(m.InstanceMetadata, (self._server(session, server_id, ctx, check).uuid, key))
            return None if row is None else row.value

        return await self.db.run(read, write=False)

    async def set_metadata(self, server_id: str, ctx: RequestContext, check: InstanceCheck, items: dict[str, str],
                           *, merge: bool) -> dict[str, str]:
        """Merge `items` into the server's metadata (or replace it by them), within the metadata_items quota
        (403 as Nova answers); the metadata now."""
        def write(session: Session) -> dict[str, str]:
            inst = self._server(session, server_id, ctx, check)
            wanted = {**_metadata(session, inst.uuid), **items} if merge else items
            limit = project_limits_sync(session, self.settings, inst.project_id)["metadata_items"]
            if 0 <= limit < len(wanted):
                raise Forbidden(f"Maximum number of metadata items exceeds {limit}")
            session.execute(delete(m.InstanceMetadata).where(m.InstanceMetadata.instance_uuid == inst.uuid))
            for key, value in wanted.items():
                session.add(m.InstanceMetadata(instance_uuid=inst.uuid, key=key, value=value))
            inst.updated_at = utcnow()
            return wanted

        return await self.db.run(write, write=True)

    async def delete_metadata_item(self, server_id: str, ctx: RequestContext, check: InstanceCheck,
                                   key: str) -> None:
        def write(session: Session) -> None:
            inst = self._server(session, server_id, ctx, check)
            row = session.get(m.InstanceMetadata, (inst.uuid, key))
            if row is None:
                raise NotFound("Metadata item was not found")
            session.delete(row)
            inst.updated_at = utcnow()

        await self.db.run(write, write=True)

    # ----- tags -------------------------------------------------------------------------------------------------
    async def tags(self, server_id: str, ctx: RequestContext, check: InstanceCheck) -> list[str]:
        return await self.db.run(lambda s: _tags(s, self._server(s, server_id, ctx, check).uuid), write=False)

    async def has_tag(self, server_id: str, ctx: RequestContext, check: InstanceCheck, tag: str) -> tuple[str, bool]:
        """The server's uuid and whether it has `tag`."""
        def read(session: Session) -> tuple[str, bool]:
            inst = self._server(session, server_id, ctx, check)
            return inst.uuid, session.get(m.InstanceTag, (inst.uuid, tag)) is not None

        return await self.db.run(read, write=False)

    async def replace_tags(self, server_id: str, ctx: RequestContext, check: InstanceCheck,
                           tags: list[str] | None) -> None:
        """Make the server's tags exactly `tags` (None: none)."""
        def write(session: Session) -> None:
            inst = self._server(session, server_id, ctx, check)
            session.execute(delete(m.InstanceTag).where(m.InstanceTag.instance_uuid == inst.uuid))
            for tag in tags or []:
                session.add(m.InstanceTag(instance_uuid=inst.uuid, tag=tag))
            inst.updated_at = utcnow()

        await self.db.run(write, write=True)

    async def add_tag(self, server_id: str, ctx: RequestContext, check: InstanceCheck, tag: str,
                      max_tags: int) -> bool:
        """Tag the server (400 beyond `max_tags`); False when it already had the tag."""
        def write(session: Session) -> bool:
            inst = self._server(session, server_id, ctx, check)
            if session.get(m.InstanceTag, (inst.uuid, tag)) is not None:
                return False
            if len(_tags(session, inst.uuid)) >= max_tags:
                raise BadRequest(f"The number of tags exceeded the per-server limit {max_tags}")
            session.add(m.InstanceTag(instance_uuid=inst.uuid, tag=tag))
            inst.updated_at = utcnow()
            return True

        return await self.db.run(write, write=True)

    async def delete_tag(self, server_id: str, ctx: RequestContext, check: InstanceCheck, tag: str) -> None:
        def write(session: Session) -> None:
            inst = self._server(session, server_id, ctx, check)
            row = session.get(m.InstanceTag, (inst.uuid, tag))
            if row is None:
                raise NotFound(f"Instance {inst.uuid} has no tag '{tag}'")
            session.delete(row)
            inst.updated_at = utcnow()

        await self.db.run(write, write=True)
