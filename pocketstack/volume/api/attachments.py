"""`/v3/{project_id}/attachments` (3.27+): reserve, export with a host connector, complete (3.44), delete.

The compute side attaches with them (FLOW.md steps 26-28): create (reserve) -> update with the host's connector
(connection info comes back) -> the driver attaches -> complete (the volume is in-use). Deleting the attachment
detaches; a failed attach deletes its attachment, so the volume is available again.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest
from pocketstack.volume.api.common import (
    all_projects,
    authorize,
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
from pocketstack.volume.store import attachments as store

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
    attachment_id, host = await store.create_attachment(db, ctx, authorize(request, "volume:attachment_create"),
                                                        body.volume_uuid, body.instance_uuid, body.mode or "null")
    if body.connector:
        try:
            if host is None:
                raise BadRequest(f"Invalid volume: Volume {body.volume_uuid} has no backend to export it.")
            await _export(request, attachment_id, host, body.connector)
        except Exception:
            await store.rollback_attachment(db, attachment_id)
            raise
    return json_response({"attachment": attachment_detail(await store.get_attachment(db, attachment_id, ctx))})


async def _list(request: Request, detail: bool) -> Response:
    require_version(request, "3.27")
    ctx = enforce(request, "volume:get_all")
    sort = sort_spec(request, ATTACHMENT_SORT)
    filters = check_filters(request, ATTACHMENT_FILTERS)
    rows = []
    for att, project_id in await store.list_attachments(state(request).db,
                                                        None if all_projects(request, ctx) else ctx.project_id):
        values = {"id": att.id, "status": att.attach_status, "attach_status": att.attach_status,
                  "volume_id": att.volume_id, "instance_id": att.instance_uuid, "project_id": project_id}
        if all(text_matches(values[k.rstrip("~")], v, k.endswith("~")) for k, v in filters.items()):
            rows.append(att)
    page, total, more = paginate(request, rows, sort)
    views = [attachment_detail(a) if detail else attachment_summary(a) for a in page]
    return json_response(collection(request, "attachments", views, total, more,
                                    "attachments/detail" if detail else "attachments"))


async def list_attachments(request: Request) -> Response:
    return await _list(request, detail=False)


async def list_attachments_detail(request: Request) -> Response:
    return await _list(request, detail=True)


async def show_attachment(request: Request, attachment_id: str) -> Response:
    require_version(request, "3.27")
    ctx = enforce(request, "volume:get")
    return json_response({"attachment": attachment_detail(await store.get_attachment(state(request).db,
                                                                                     attachment_id, ctx))})


async def update_attachment(request: Request, attachment_id: str) -> Response:
    """Export the reserved volume to the connector's host (the connection info comes back)."""
    require_version(request, "3.27")
    ctx = enforce(request, "volume:attachment_update")
    body = await body_of(request, "attachment", AttachmentUpdate)
    db = state(request).db
    host = await store.export_host(db, ctx, authorize(request, "volume:attachment_update"), attachment_id)
    await _export(request, attachment_id, host, body.connector)
    return json_response({"attachment": attachment_detail(await store.get_attachment(db, attachment_id, ctx))})


async def attachment_action(request: Request, attachment_id: str) -> Response:
    """`os-complete` (3.44): the attachment is attached and the volume in-use."""
    require_version(request, "3.44")
    raw = await json_body(request)
    if not isinstance(raw, dict) or list(raw) != ["os-complete"]:
        raise BadRequest("Invalid input: the only attachment action is 'os-complete'.")
    ctx = enforce(request, "volume:attachment_complete")
    await store.complete_attachment(state(request).db, ctx, authorize(request, "volume:attachment_complete"),
                                    attachment_id)
    return Response(status_code=204)


async def delete_attachment(request: Request, attachment_id: str) -> Response:
    """Detach: drop the attachment; the volume is available again once no attachment remains."""
    require_version(request, "3.27")
    ctx = enforce(request, "volume:attachment_delete")
    remaining = await store.delete_attachment(state(request).db, ctx, authorize(request, "volume:attachment_delete"),
                                              attachment_id)
    return json_response({"attachments": [attachment_summary(a) for a in remaining]})
