"""`rescue` and `unrescue` server actions: the server boots a rescue image (its own by default) with its root
disk attached second, and back. Volume-backed servers cannot be rescued (Nova's before 2.87)."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import Request, Response

from pocketstack.common.apikit import is_uuid
from pocketstack.common.app import json_response, request_context
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.compute import states
from pocketstack.compute.api.common import state
from pocketstack.compute.api.servers import admin_password


async def _start(request: Request, server_id: str, action: str, policy: str, before: Any = None) -> tuple[Any, str]:
    """Check (404, 403, lock 409, state 409) and set the task of `action`; the server and its host."""
    ctx = request_context(request)
    api = state(request)

    def check(inst: Any) -> None:
        api.policy.enforce(policy, ctx, {"project_id": inst.project_id, "user_id": inst.user_id})
        if inst.locked and not ctx.is_admin:
            raise Conflict(f"Instance {inst.uuid} is locked")
        states.check_action(action, inst.uuid, inst.vm_state, inst.task_state)

    inst = await api.servers.visible(server_id, ctx)
    check(inst)
    if before is not None:
        await before(inst)
    host = await api.servers.start_power_action(server_id, ctx, check, action, action)
    if host is None:
        with contextlib.suppress(Exception):
            await api.servers.end_task(inst.uuid, [states.ACTIONS[action][1]])
        raise Conflict(f"Instance {inst.uuid} is not on a host.")
    return inst, host


async def _rescue(request: Request, server_id: str, args: Any) -> Response:
    if args is not None and not isinstance(args, dict):
        raise BadRequest(f"Invalid input for field/attribute rescue. Value: {args}. {args!r} is not of type "
                         "'object', 'null'")
    entity = args or {}
    extra = sorted(set(entity) - {"adminPass", "rescue_image_ref"})
    if extra:
        raise BadRequest(f"Additional properties are not allowed ({', '.join(repr(k) for k in extra)} "
                         f"{'was' if len(extra) == 1 else 'were'} unexpected)")
    sent = entity.get("adminPass")
    if sent is not None and (not isinstance(sent, str) or len(sent) > 255):
        raise BadRequest(f"Invalid input for field/attribute adminPass. Value: {sent}.")
    ref = entity.get("rescue_image_ref")
    if ref is not None and (not isinstance(ref, str) or not is_uuid(ref)):
        raise BadRequest(f"Invalid input for field/attribute rescue_image_ref. Value: {ref}. {ref!r} is not a "
                         "'uuid'")
    api = state(request)
    image_id = ref

    async def check_image(inst: Any) -> None:
        nonlocal image_id
        if any(b.boot_index == 0 and b.destination_type == "volume" for b in inst.block_devices):
            raise BadRequest(f"Cannot rescue a volume-backed instance {inst.uuid}")
        image_id = image_id or inst.image_ref
        try:
            image = await api.image.get_image(image_id)
        except NotFound:
            raise BadRequest(f"Image {image_id} could not be found.")
        if image.get("status") != "active":
            raise BadRequest(f"Image {image_id} is not active.")

    inst, host = await _start(request, server_id, "rescue", "os_compute_api:os-rescue", check_image)
    password, _ = admin_password(api, sent)
    try:
        assert image_id is not None
        await api.agents.rescue_instance(host, inst.uuid, image_id)
    except BaseException:
        with contextlib.suppress(Exception):
            await api.servers.end_task(inst.uuid, [states.RESCUING])
        raise
    return json_response({"adminPass": password} if password is not None else {}, status=200)


async def _unrescue(request: Request, server_id: str, args: Any) -> Response:
    api = state(request)
    inst, host = await _start(request, server_id, "unrescue", "os_compute_api:os-unrescue")
    try:
        await api.agents.unrescue_instance(host, inst.uuid)
    except BaseException:
        with contextlib.suppress(Exception):
            await api.servers.end_task(inst.uuid, [states.UNRESCUING])
        raise
    return Response(status_code=202)


# request body key -> handler, for server_actions
SERVER_ACTIONS = {"rescue": _rescue, "unrescue": _unrescue}
