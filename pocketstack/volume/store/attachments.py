"""Volume attachments (3.27+) and the state changes they make on their volume, shared with the legacy volume
actions: reserve, export (the manager records the connection), complete, detach."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict
from pocketstack.common.timeutils import utcnow
from pocketstack.volume import models as m
from pocketstack.volume import states as st
from pocketstack.volume.store.lookups import Authorize, visible_attachment, visible_volume


# ----- the state changes ---------------------------------------------------------------------------------------------
def reserve(session: Session, vol: m.Volume, instance_uuid: str | None, mode: str = "null") -> m.VolumeAttachment:
    """Cinder's _attachment_reserve: the volume becomes reserved and gets an attachment record."""
    if "error" in vol.status:
        raise BadRequest(f"Invalid volume: Volume attachments can not be created if the volume is in an error "
                         f"state. The Volume {vol.id} currently has a status of: {vol.status} ")
    allowed = (st.AVAILABLE, st.IN_USE, st.RESERVED) if vol.multiattach else (st.AVAILABLE,)
    same_instance = instance_uuid is not None and any(a.instance_uuid == instance_uuid for a in vol.attachments)
    if vol.status not in allowed and not (same_instance and vol.status in (st.IN_USE, st.RESERVED)):
        raise BadRequest(f"Invalid volume: Volume {vol.id} status must be {' or '.join(allowed)} to reserve, but "
                         f"the current status is {vol.status}.")
    if vol.status == st.AVAILABLE or (vol.multiattach and vol.status != st.IN_USE):
        vol.status = st.RESERVED
    vol.updated_at = utcnow()
    return new_attachment(session, vol, instance_uuid, mode)


def new_attachment(session: Session, vol: m.Volume, instance_uuid: str | None, mode: str) -> m.VolumeAttachment:
    now = utcnow()
    attachment = m.VolumeAttachment(id=str(uuid.uuid4()), volume_id=vol.id, instance_uuid=instance_uuid,
                                    attach_status=st.ATTACH_RESERVED, attach_mode=mode, created_at=now, updated_at=now)
    session.add(attachment)
    session.flush()
    return attachment


def finish_detach(session: Session, vol: m.Volume, attachment: m.VolumeAttachment) -> None:
    """Drop an attachment; the volume is in-use while attached ones remain, available once none do."""
    session.delete(attachment)
    session.flush()
    session.expire(vol, ["attachments"])
    remaining = list(vol.attachments)
    if any(a.attach_status == st.ATTACHED for a in remaining):
        vol.status, vol.attach_status = st.IN_USE, st.ATTACHED
    elif remaining:
        vol.status, vol.attach_status = st.RESERVED, st.DETACHED
    else:
        vol.status, vol.attach_status = st.AVAILABLE, st.DETACHED
    vol.updated_at = utcnow()


def complete(vol: m.Volume, attachment: m.VolumeAttachment) -> None:
    now = utcnow()
    attachment.attach_status, attachment.attach_time, attachment.updated_at = st.ATTACHED, now, now
    vol.status, vol.attach_status, vol.updated_at = st.IN_USE, st.ATTACHED, now


# ----- the transactions of the attachments API ---------------------------------------------------------------------
async def create_attachment(db: Database, ctx: RequestContext, authorize: Authorize, volume_id: str,
                            instance_uuid: str | None, mode: str) -> tuple[str, str | None]:
    """Reserve the volume; returns the new attachment's id and the volume's backend."""
    def write(session: Session) -> tuple[str, str | None]:
        vol = visible_volume(session, volume_id, ctx)
        authorize(vol)
        return reserve(session, vol, instance_uuid, mode).id, vol.host
    return await db.run(write, write=True)


async def rollback_attachment(db: Database, attachment_id: str) -> None:
    """Undo a reservation whose export failed."""
    def write(session: Session) -> None:
        attachment = session.get(m.VolumeAttachment, attachment_id)
        if attachment is not None:
            finish_detach(session, session.get(m.Volume, attachment.volume_id), attachment)
    await db.run(write, write=True)


async def get_attachment(db: Database, attachment_id: str, ctx: RequestContext) -> m.VolumeAttachment:
    return await db.run(lambda s: visible_attachment(s, attachment_id, ctx), write=False)


async def list_attachments(db: Database, project_id: str | None) -> list[tuple[m.VolumeAttachment, str]]:
    """The attachments of the volumes of `project_id` (None: of every project), each with its volume's project."""
    query = select(m.VolumeAttachment, m.Volume.project_id).join(m.Volume)
    if project_id is not None:
        query = query.where(m.Volume.project_id == project_id)
    return await db.run(lambda s: [(att, owner) for att, owner in s.execute(query).all()], write=False)


def _attachment_and_volume(session: Session, attachment_id: str, ctx: RequestContext,
                           authorize: Authorize) -> tuple[m.VolumeAttachment, m.Volume]:
    attachment = visible_attachment(session, attachment_id, ctx)
    vol = session.get(m.Volume, attachment.volume_id)
    authorize(vol)
    return attachment, vol


async def export_host(db: Database, ctx: RequestContext, authorize: Authorize, attachment_id: str) -> str:
    """The backend to ask for the attachment's connection, once the volume may be exported to one more host."""
    def read(session: Session) -> str:
        attachment, vol = _attachment_and_volume(session, attachment_id, ctx, authorize)
        if "error" in vol.status or vol.host is None:
            raise Conflict(f"Volume attachments can not be updated if the volume is in an error state. The Volume "
                           f"{vol.id} currently has a status of: {vol.status} ")
        others = [a for a in vol.attachments if a.id != attachment_id and a.connection_info]
        if others and not vol.multiattach and any(a.instance_uuid != attachment.instance_uuid for a in others):
            raise Conflict(f"duplicate connectors detected on volume {vol.id}")
        return vol.host
    return await db.run(read, write=False)


async def complete_attachment(db: Database, ctx: RequestContext, authorize: Authorize, attachment_id: str) -> None:
    """`os-complete`: the attachment is attached and the volume in-use."""
    def write(session: Session) -> None:
        attachment, vol = _attachment_and_volume(session, attachment_id, ctx, authorize)
        if attachment.connection_info is None:
            raise BadRequest(f"Invalid input received: attachment {attachment_id} has no connection yet: update it "
                             "with a connector first.")
        complete(vol, attachment)
    await db.run(write, write=True)


async def delete_attachment(db: Database, ctx: RequestContext, authorize: Authorize,
                            attachment_id: str) -> list[m.VolumeAttachment]:
    """Detach; returns the volume's remaining attachments."""
    def write(session: Session) -> list[m.VolumeAttachment]:
        attachment, vol = _attachment_and_volume(session, attachment_id, ctx, authorize)
        finish_detach(session, vol, attachment)
        return list(vol.attachments)
    return await db.run(write, write=True)
