"""`/servers/{id}/os-volume_attachments`: attach (FLOW.md 26-28 through the attachments API), list, show, detach;
a swap (PUT) is checked as Nova checks it and then refused, no driver here can swap a volume under a guest.

Attaching reserves the volume with the block storage service as the caller (so another project's volume is 404 and
an in-use one 400, as the volume service answers), records the mapping with its device name, then casts the attach
to the server's host, which exports, plugs and completes it. Detaching marks the volume detaching and casts.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pocketstack.common.apikit import is_uuid, version
from pocketstack.common.app import describe_validation_error, json_body, json_response, request_context
from pocketstack.common.errors import APIError, BadRequest, Conflict, NotFound
from pocketstack.compute import states
from pocketstack.compute.api.block_devices import ROOT_DEVICE, next_device
from pocketstack.compute.api.block_devices import _device as device_name
from pocketstack.compute.api.common import limit_param, state
from pocketstack.compute.store.attachments import NewAttachment

log = logging.getLogger("pocketstack.compute.api")

# vm_states a volume may be attached in or detached from (with no task running)
READY = (states.ACTIVE, states.PAUSED, states.STOPPED, states.SUSPENDED)


class AttachmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    volumeId: str
    device: str | None = None
    tag: str | None = Field(None, max_length=60)
    delete_on_termination: bool = False


def _view(request: Request, bdm: Any, server_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": bdm.volume_id, "volumeId": bdm.volume_id, "serverId": server_id,
                            "device": bdm.device_name}
    if version(request) >= "2.70":
        body["tag"] = bdm.tag
    if version(request) >= "2.79":
        body["delete_on_termination"] = bdm.delete_on_termination
    return body


async def _instance(request: Request, server_id: str, action: str) -> Any:
    ctx = request_context(request)
    inst = await state(request).servers.visible(server_id, ctx)
    state(request).policy.enforce(f"os_compute_api:os-volumes-attachments:{action}", ctx,
                                  {"project_id": inst.project_id})
    return inst


def _ready(inst: Any, action: str) -> None:
    if inst.vm_state not in READY or inst.task_state is not None or inst.host is None:
        what = f"task_state {inst.task_state}" if inst.task_state else f"vm_state {inst.vm_state}"
        raise Conflict(f"Cannot '{action}' instance {inst.uuid} while it is in {what}")


def _changeable(request: Request, inst: Any, action: str) -> None:
    """409 when the server is locked (for a non-admin) or not in a state to attach or detach."""
    if inst.locked and not request_context(request).is_admin:
        raise Conflict(f"Instance {inst.uuid} is locked")
    _ready(inst, action)


async def list_attachments(request: Request, server_id: str) -> Response:
    limit = limit_param(request)
    offset = request.query_params.get("offset", "0")
    if not offset.isdigit():
        raise BadRequest(f"Invalid input for query parameters offset. Value: {offset}.")
    inst = await _instance(request, server_id, "index")
    bdms = [b for b in inst.block_devices if b.volume_id][int(offset):int(offset) + limit]
    return json_response({"volumeAttachments": [_view(request, b, inst.uuid) for b in bdms]})


async def show_attachment(request: Request, server_id: str, volume_id: str) -> Response:
    inst = await _instance(request, server_id, "show")
    bdm = next((b for b in inst.block_devices if b.volume_id == volume_id), None)
    if bdm is None:
        raise NotFound(f"Volume {volume_id} is not attached to server {server_id}.")
    return json_response({"volumeAttachment": _view(request, bdm, inst.uuid)})


def _parse_attach(request: Request, raw: Any) -> AttachmentCreate:
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
    if not is_uuid(body.volumeId):
        raise BadRequest(f"Invalid input for field/attribute volumeId. Value: {body.volumeId}. "
                         f"'{body.volumeId}' is not a 'uuid'")
    return body


async def _reserve(request: Request, body: AttachmentCreate, instance_uuid: str) -> tuple[dict[str, Any],
                                                                                       dict[str, Any]]:
    """The volume and its attachment to the server, reserved with the block storage service (step 26)."""
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
    return volume, attachment


async def attach_volume(request: Request, server_id: str) -> Response:
    ctx = request_context(request)
    body = _parse_attach(request, await json_body(request))
    requested_device = device_name(body.device)
    if requested_device == ROOT_DEVICE:
        raise BadRequest(f"The supplied device path ({body.device}) is in use.")
    inst = await _instance(request, server_id, "create")
    _changeable(request, inst, "attach_volume")
    if any(b.volume_id == body.volumeId for b in inst.block_devices):
        raise BadRequest(f"Invalid volume: volume {body.volumeId} already attached")
    volume, attachment = await _reserve(request, body, inst.uuid)

    def device_for(in_use: set[str]) -> str:
        used = {ROOT_DEVICE, *in_use}
        if requested_device in used:
            raise BadRequest(f"The supplied device path ({body.device}) is in use.")
        return requested_device or next_device(used)

    api = state(request)
    new = NewAttachment(body.volumeId, volume.get("size"), attachment["id"], body.delete_on_termination, body.tag)
    try:
        bdm, host = await api.attachments.record(inst.uuid, server_id, ctx,
                                                 lambda row: _ready(row, "attach_volume"), device_for, new)
    except Exception:
        await api.volume.attachment_delete(attachment["id"])  # the reservation goes with the failed request
        raise
    try:
        await api.agents.attach_volume(host, inst.uuid, bdm.id)
    except Exception:
        await api.attachments.delete(bdm.id)
        await api.volume.attachment_delete(attachment["id"])
        raise
    return json_response({"volumeAttachment": _view(request, bdm, inst.uuid)})


async def detach_volume(request: Request, server_id: str, volume_id: str) -> Response:
    ctx = request_context(request)
    api = state(request)
    inst = await _instance(request, server_id, "delete")
    _changeable(request, inst, "detach_volume")
    bdm = next((b for b in inst.block_devices if b.volume_id == volume_id), None)
    if bdm is None:
        raise NotFound(f"Volume {volume_id} is not attached to server {server_id}.")
    if bdm.boot_index == 0:
        raise BadRequest("Cannot detach a root device volume")
    try:
        await api.volume.volume_action(volume_id, "os-begin_detaching")
    except APIError as exc:
        raise BadRequest(exc.message) if exc.status < 500 else exc
    await api.actions.record(inst.uuid, "detach_volume", ctx, ctx.project_id)
    try:
        await api.agents.detach_volume(inst.host, inst.uuid, volume_id)
    except Exception:
        await api.volume.volume_action(volume_id, "os-roll_detaching")  # still attached
        raise
    return Response(status_code=202)


class _SwapBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    volumeId: str


async def swap_volume(request: Request, server_id: str, volume_id: str) -> Response:
    """PUT: swap the attached `volume_id` for the body's volume (admin). Checked in Nova's order: the policy,
    the body, the old volume (404), the new one (400), the server, the attachment (404); then refused (400)."""
    ctx = request_context(request)
    state(request).policy.enforce("os_compute_api:os-volumes-attachments:swap", ctx, {})
    raw = await json_body(request)
    if not isinstance(raw, dict) or not isinstance(raw.get("volumeAttachment"), dict):
        raise BadRequest("Invalid input: 'volumeAttachment' is a required property.")
    try:
        body = _SwapBody.model_validate(raw["volumeAttachment"])
    except ValidationError as exc:
        raise BadRequest(describe_validation_error(exc))
    if not is_uuid(body.volumeId):
        raise BadRequest(f"Invalid input for field/attribute volumeId. Value: {body.volumeId}. "
                         f"'{body.volumeId}' is not a 'uuid'")
    volumes = state(request).volume
    try:
        await volumes.get_volume(volume_id)
    except NotFound:
        raise NotFound(f"Volume {volume_id} could not be found.")
    try:
        await volumes.get_volume(body.volumeId)
    except NotFound:
        raise BadRequest(f"Volume {body.volumeId} could not be found.")
    inst = await state(request).servers.visible(server_id, ctx)
    if not any(b.volume_id == volume_id for b in inst.block_devices):
        raise NotFound("The volume was either invalid or not attached to the instance.")
    raise BadRequest("Swapping volumes is not supported by this cloud's compute drivers.")
