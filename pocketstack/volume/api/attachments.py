"""`/v3/{project_id}/attachments` (3.27+): reserve, export with a host connector, complete (3.44), delete.

The compute side attaches with them (FLOW.md steps 26-28): create (reserve) -> update with the host's connector
(connection info comes back) -> the driver attaches -> complete (the volume is in-use). Deleting the attachment
detaches; a failed attach deletes its attachment, so the volume is available again.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.app import json_body, json_response
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Conflict
from pocketstack.common.timeutils import utcnow
from pocketstack.volume import models as m
from pocketstack.volume import states as st
from pocketstack.volume.api.common import (
    all_projects,
    body_of,
    check_filters,
    collection,
    enforce,
    paginate,
    require_version,
    sort_spec,
    state,
    text_matches,
    version,
)
from pocketstack.volume.api.views import attachment_detail, attachment_summary
from pocketstack.volume.store.lookups import visible_attachment, visible_volume

log = logging.getLogger("pocketstack.volume.api")


ATTACHMENT_FILTERS = {"id", "status", "volume_id", "instance_id", "attach_status", "project_id"}
ATTACHMENT_SORT = {"id": "id", "created_at": "created_at", "status": "attach_status", "volume_id": "volume_id"}


class AttachmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    volume_uuid: str
    instance_uuid: str | None = None
    connector: dict[str, Any] | None = None
    mode: str | None = None


class AttachmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connector: dict[str, Any]


# ----- the state changes, shared with the legacy volume actions ------------------------------------------------------
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


async def _export(request: Request, attachment_id: str, host: str, connector: dict[str, Any]) -> None:
    """Ask the volume's manager for the connection (it records it on the attachment)."""
    if not isinstance(connector.get("host", ""), str):
        raise BadRequest("Invalid input received: connector 'host' must be a string.")
    await state(request).manager.attachment_update(host, attachment_id, connector)


# ----- routes --------------------------------------------------------------------------------------------------------
async def create_attachment(request: Request) -> Response:
    require_version(request, "3.27")
    ctx = enforce(request, "volume:attachment_create")
    body = await body_of(request, "attachment", AttachmentCreate)
    if body.mode is not None:
        if version(request) < "3.54":
            raise BadRequest("Invalid input: 'mode' needs microversion 3.54 or later.")
        if body.mode not in ("rw", "ro"):
            raise BadRequest(f"Invalid input received: attach mode {body.mode!r} is not rw or ro.")
    db = state(request).db

    def write(session: Session) -> tuple[str, str | None]:
        vol = visible_volume(session, body.volume_uuid, ctx)
        enforce(request, "volume:attachment_create", {"project_id": vol.project_id})
        return reserve(session, vol, body.instance_uuid, body.mode or "null").id, vol.host

    attachment_id, host = await db.run(write, write=True)
    if body.connector:
        try:
            if host is None:
                raise BadRequest(f"Invalid volume: Volume {body.volume_uuid} has no backend to export it.")
            await _export(request, attachment_id, host, body.connector)
        except Exception:
            await db.run(lambda s: _rollback(s, attachment_id), write=True)
            raise
    attachment = await db.run(lambda s: s.get(m.VolumeAttachment, attachment_id), write=False)
    return json_response({"attachment": attachment_detail(attachment)})


def _rollback(session: Session, attachment_id: str) -> None:
    attachment = session.get(m.VolumeAttachment, attachment_id)
    if attachment is not None:
        finish_detach(session, session.get(m.Volume, attachment.volume_id), attachment)


def _visible_attachments(request: Request, session: Session, ctx: RequestContext) -> list[m.VolumeAttachment]:
    filters = check_filters(request, ATTACHMENT_FILTERS)
    query = select(m.VolumeAttachment, m.Volume.project_id).join(m.Volume)
    if not all_projects(request, ctx):
        query = query.where(m.Volume.project_id == ctx.project_id)
    rows = []
    for att, project_id in session.execute(query).all():
        values = {"id": att.id, "status": att.attach_status, "attach_status": att.attach_status,
                  "volume_id": att.volume_id, "instance_id": att.instance_uuid, "project_id": project_id}
        if all(text_matches(values[k.rstrip("~")], v, k.endswith("~")) for k, v in filters.items()):
            rows.append(att)
    return rows


async def _list(request: Request, detail: bool) -> Response:
    require_version(request, "3.27")
    ctx = enforce(request, "volume:get_all")
    sort = sort_spec(request, ATTACHMENT_SORT)

    def read(session: Session) -> dict[str, Any]:
        page, total, more = paginate(request, _visible_attachments(request, session, ctx), sort)
        views = [attachment_detail(a) if detail else attachment_summary(a) for a in page]
        return collection(request, "attachments", views, total, more,
                          "attachments/detail" if detail else "attachments")

    return json_response(await state(request).db.run(read, write=False))


async def list_attachments(request: Request) -> Response:
    return await _list(request, detail=False)


async def list_attachments_detail(request: Request) -> Response:
    return await _list(request, detail=True)


async def show_attachment(request: Request, attachment_id: str) -> Response:
    require_version(request, "3.27")
    ctx = enforce(request, "volume:get")

    def read(session: Session) -> dict[str, Any]:
        return {"attachment": attachment_detail(visible_attachment(session, attachment_id, ctx))}

    return json_response(await state(request).db.run(read, write=False))


async def update_attachment(request: Request, attachment_id: str) -> Response:
    """Export the reserved volume to the connector's host (the connection info comes back)."""
    require_version(request, "3.27")
    ctx = enforce(request, "volume:attachment_update")
    body = await body_of(request, "attachment", AttachmentUpdate)
    db = state(request).db

    def check(session: Session) -> str:
        attachment = visible_attachment(session, attachment_id, ctx)
        vol = session.get(m.Volume, attachment.volume_id)
        enforce(request, "volume:attachment_update", {"project_id": vol.project_id})
        if "error" in vol.status or vol.host is None:
            raise Conflict(f"Volume attachments can not be updated if the volume is in an error state. The Volume "
                           f"{vol.id} currently has a status of: {vol.status} ")
        others = [a for a in vol.attachments if a.id != attachment_id and a.connection_info]
        if others and not vol.multiattach and any(a.instance_uuid != attachment.instance_uuid for a in others):
            raise Conflict(f"duplicate connectors detected on volume {vol.id}")
        return vol.host

    host = await db.run(check, write=False)
    await _export(request, attachment_id, host, body.connector)
    attachment = await db.run(lambda s: s.get(m.VolumeAttachment, attachment_id), write=False)
    return json_response({"attachment": attachment_detail(attachment)})


async def attachment_action(request: Request, attachment_id: str) -> Response:
    """`os-complete` (3.44): the attachment is attached and the volume in-use."""
    require_version(request, "3.44")
    raw = await json_body(request)
    if not isinstance(raw, dict) or list(raw) != ["os-complete"]:
        raise BadRequest("Invalid input: the only attachment action is 'os-complete'.")
    ctx = enforce(request, "volume:attachment_complete")

    def write(session: Session) -> None:
        attachment = visible_attachment(session, attachment_id, ctx)
        vol = session.get(m.Volume, attachment.volume_id)
        enforce(request, "volume:attachment_complete", {"project_id": vol.project_id})
        if attachment.connection_info is None:
            raise BadRequest(f"Invalid input received: attachment {attachment_id} has no connection yet: update it "
                             "with a connector first.")
        complete(vol, attachment)

    await state(request).db.run(write, write=True)
    return Response(status_code=204)


async def delete_attachment(request: Request, attachment_id: str) -> Response:
    """Detach: drop the attachment; the volume is available again once no attachment remains."""
    require_version(request, "3.27")
    ctx = enforce(request, "volume:attachment_delete")

    def write(session: Session) -> dict[str, Any]:
        attachment = visible_attachment(session, attachment_id, ctx)
        vol = session.get(m.Volume, attachment.volume_id)
        enforce(request, "volume:attachment_delete", {"project_id": vol.project_id})
        finish_detach(session, vol, attachment)
        return {"attachments": [attachment_summary(a) for a in vol.attachments]}

    return json_response(await state(request).db.run(write, write=True))
