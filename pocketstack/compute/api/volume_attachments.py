"""`/servers/{id}/os-volume_attachments`: attach (FLOW.md 26-28 through the attachments API), list, show, detach.

Attaching reserves the volume with the block storage service as the caller (so another project's volume is 404 and
an in-use one 400, as the volume service answers), records the mapping with its device name, then casts the attach
to the server's host, which exports, plugs and completes it. Detaching marks the volume detaching and casts.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete
from sqlalchemy.orm import Session

from pocketstack.common.app import describe_validation_error, json_body, json_response, request_context
from pocketstack.common.errors import APIError, BadRequest, Conflict, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute import states
from pocketstack.compute.api.block_devices import ROOT_DEVICE, UUID_RE, next_device
from pocketstack.compute.api.block_devices import _device as device_name
from pocketstack.compute.api.common import limit_param, state, version
from pocketstack.compute.api.servers import visible_instance

log = logging.getLogger("pocketstack.compute.api")

router = APIRouter(prefix="/v2.1")

# vm_states a volume may be attached in or detached from (with no task running)
READY = (states.ACTIVE, states.PAUSED, states.STOPPED, states.SUSPENDED)


class AttachmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    volumeId: str
    device: str | None = None
    tag: str | None = Field(None, max_length=60)
    delete_on_termination: bool = False


def _view(request: Request, bdm: m.BlockDeviceMapping, server_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": bdm.volume_id, "volumeId": bdm.volume_id, "serverId": server_id,
                            "device": bdm.device_name}
    if version(request) >= "2.70":
        body["tag"] = bdm.tag
    if version(request) >= "2.79":
        body["delete_on_termination"] = bdm.delete_on_termination
    return body


def _instance(session: Session, request: Request, server_id: str, action: str) -> m.Instance:
    ctx = request_context(request)
    inst = visible_instance(session, server_id, ctx)
    state(request).policy.enforce(f"os_compute_api:os-volumes-attachments:{action}", ctx,
                                  {"project_id": inst.project_id})
    return inst


def _ready(inst: m.Instance, action: str) -> None:
    if inst.vm_state not in READY or inst.task_state is not None or inst.host is None:
        what = f"task_state {inst.task_state}" if inst.task_state else f"vm_state {inst.vm_state}"
        raise Conflict(f"Cannot '{action}' instance {inst.uuid} while it is in {what}")


@router.get("/servers/{server_id}/os-volume_attachments")
async def list_attachments(request: Request, server_id: str) -> Response:
    limit = limit_param(request)
    offset = request.query_params.get("offset", "0")
    if not offset.isdigit():
        raise BadRequest(f"Invalid input for query parameters offset. Value: {offset}.")

    def read(session: Session) -> dict[str, Any]:
        inst = _instance(session, request, server_id, "index")
        bdms = [b for b in inst.block_devices if b.volume_id][int(offset):int(offset) + limit]
        return {"volumeAttachments": [_view(request, b, inst.uuid) for b in bdms]}

    return json_response(await state(request).db.run(read, write=False))


@router.get("/servers/{server_id}/os-volume_attachments/{volume_id}")
async def show_attachment(request: Request, server_id: str, volume_id: str) -> Response:
    def read(session: Session) -> dict[str, Any]:
        inst = _instance(session, request, server_id, "show")
        bdm = next((b for b in inst.block_devices if b.volume_id == volume_id), None)
        if bdm is None:
            raise NotFound(f"Volume {volume_id} is not attached to server {server_id}.")
        return {"volumeAttachment": _view(request, bdm, inst.uuid)}

    return json_response(await state(request).db.run(read, write=False))


@router.post("/servers/{server_id}/os-volume_attachments")
async def attach_volume(request: Request, server_id: str) -> Response:
    ctx = request_context(request)
    raw = await json_body(request)
    if not isinstance(raw, dict) or not isinstance(raw.get("volumeAttachment"), dict):
        raise BadRequest("Invalid input: 'volumeAttachment' is a required property.")
    try:
        body = AttachmentCreate.model_validate(raw["volumeAttachment"])
    except ValidationError as exc:
        raise BadRequest(describe_validation_error(exc))
    fields = body.model_fields_set
    if "tag" in fields and version(request) < "2.49":
        raise BadRequest("Invalid input: 'tag' needs microversion 2.49 or later.")
    if "delete_on_termination" in fields and version(request) < "2.79":
        raise BadRequest("Invalid input: 'delete_on_termination' needs microversion 2.79 or later.")
    if not UUID_RE.match(body.volumeId):
        raise BadRequest(f"Invalid input for field/attribute volumeId. Value: {body.volumeId}. "
                         f"'{body.volumeId}' is not a 'uuid'")
    requested_device = device_name(body.device)
    if requested_device == ROOT_DEVICE:
        raise BadRequest(f"The supplied device path ({body.device}) is in use.")
    db = state(request).db

    def check(session: Session) -> str:
        inst = _instance(session, request, server_id, "create")
        if inst.locked and not ctx.is_admin:
            raise Conflict(f"Instance {inst.uuid} is locked")
        _ready(inst, "attach_volume")
        if any(b.volume_id == body.volumeId for b in inst.block_devices):
            raise BadRequest(f"Invalid volume: volume {body.volumeId} already attached")
        return inst.uuid

    instance_uuid = await db.run(check, write=False)
    volumes = state(request).volume
    try:
        volume = await volumes.get_volume(body.volumeId)
    except NotFound:
        raise NotFound(f"Volume {body.volumeId} could not be found.")
    if volume.get("multiattach") and version(request) < "2.60":
        raise BadRequest("Multiattach volumes are only supported starting with compute API version 2.60.")
    try:
        attachment = await volumes.attachment_create(body.volumeId, instance_uuid)  # step 26: reserve
    except APIError as exc:
        if exc.status == 404:
            raise NotFound(f"Volume {body.volumeId} could not be found.")
        raise BadRequest(exc.message) if exc.status < 500 else exc

    def record(session: Session) -> tuple[int, str, dict[str, Any]]:
        inst = session.get(m.Instance, instance_uuid)
        if inst is None or inst.deleted:
            raise NotFound(f"Instance {server_id} could not be found.")
        _ready(inst, "attach_volume")
        used = {ROOT_DEVICE, *(b.device_name for b in inst.block_devices if b.device_name)}
        if requested_device in used:
            raise BadRequest(f"The supplied device path ({body.device}) is in use.")
        bdm = m.BlockDeviceMapping(instance_uuid=instance_uuid, source_type="volume", destination_type="volume",
                                   boot_index=None, device_name=requested_device or next_device(used),
                                   volume_id=body.volumeId, volume_size=volume.get("size"),
                                   delete_on_termination=body.delete_on_termination, tag=body.tag,
                                   attachment_id=attachment["id"], created_at=utcnow())
        session.add(bdm)
        session.add(m.InstanceAction(instance_uuid=instance_uuid, action="attach_volume", request_id=ctx.request_id,
                                     project_id=ctx.project_id or inst.project_id, user_id=ctx.user_id or "",
                                     start_time=utcnow()))
        session.flush()
        return bdm.id, inst.host, _view(request, bdm, instance_uuid)

    try:
        bdm_id, host, view = await db.run(record, write=True)
    except Exception:
        await volumes.attachment_delete(attachment["id"])  # the reservation goes with the failed request
        raise
    try:
        await state(request).agents.attach_volume(host, instance_uuid, bdm_id)
    except Exception:
        await db.run(lambda session: session.execute(delete(m.BlockDeviceMapping).where(
            m.BlockDeviceMapping.id == bdm_id)), write=True)
        await volumes.attachment_delete(attachment["id"])
        raise
    return json_response({"volumeAttachment": view})


@router.delete("/servers/{server_id}/os-volume_attachments/{volume_id}")
async def detach_volume(request: Request, server_id: str, volume_id: str) -> Response:
    ctx = request_context(request)

    def check(session: Session) -> tuple[str, str]:
        inst = _instance(session, request, server_id, "delete")
        if inst.locked and not ctx.is_admin:
            raise Conflict(f"Instance {inst.uuid} is locked")
        _ready(inst, "detach_volume")
        bdm = next((b for b in inst.block_devices if b.volume_id == volume_id), None)
        if bdm is None:
            raise NotFound(f"Volume {volume_id} is not attached to server {server_id}.")
        if bdm.boot_index == 0:
            raise BadRequest("Cannot detach a root device volume")
        return inst.uuid, inst.host

    db = state(request).db
    instance_uuid, host = await db.run(check, write=False)
    try:
        await state(request).volume.volume_action(volume_id, "os-begin_detaching")
    except APIError as exc:
        raise BadRequest(exc.message) if exc.status < 500 else exc
    await db.run(lambda session: session.add(m.InstanceAction(
        instance_uuid=instance_uuid, action="detach_volume", request_id=ctx.request_id, project_id=ctx.project_id,
        user_id=ctx.user_id or "", start_time=utcnow())), write=True)
    try:
        await state(request).agents.detach_volume(host, instance_uuid, volume_id)
    except Exception:
        await state(request).volume.volume_action(volume_id, "os-roll_detaching")  # still attached
        raise
    return Response(status_code=202)
