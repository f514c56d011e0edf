"""`os-resetState` (admin: a server's vm_state set to active or error, its task cleared), `injectNetworkInfo` (admin:
nothing to inject, as Nova's libvirt driver, which keeps no network state in the guest), and the deferred-delete
actions `restore` and `forceDelete` as Nova answers them with `reclaim_instance_interval` 0 (its default): no
server is ever soft-deleted, so `restore` finds none to restore (409) and `forceDelete` is a delete."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common.app import request_context
from pocketstack.common.errors import BadRequest, Conflict
from pocketstack.compute import states
from pocketstack.compute.api.common import delete_instance, state

RESET_STATES = {"active": states.ACTIVE, "error": states.ERROR}


async def _reset_state(request: Request, server_id: str, args: Any) -> Response:
    wanted = args.get("state") if isinstance(args, dict) else None
    if set(args or {}) - {"state"} or wanted not in RESET_STATES:
        raise BadRequest("Invalid input for field/attribute os-resetState. Value: "
                         f"{args}. 'state' must be one of 'active', 'error'")
    ctx = request_context(request)
    api = state(request)
    inst = await api.servers.visible(server_id, ctx)
    api.policy.enforce("os_compute_api:os-admin-actions:reset_state", ctx, {"project_id": inst.project_id})
    await api.servers.reset_state(inst.uuid, ctx, RESET_STATES[wanted])
    return Response(status_code=202)


async def _restore(request: Request, server_id: str, args: Any) -> Response:
    ctx = request_context(request)
    api = state(request)
    inst = await api.servers.visible(server_id, ctx)
    api.policy.enforce("os_compute_api:os-deferred-delete:restore", ctx, {"project_id": inst.project_id})
    raise Conflict(f"Cannot 'restore' instance {inst.uuid} while it is in vm_state {inst.vm_state}")


async def _force_delete(request: Request, server_id: str, args: Any) -> Response:
    await delete_instance(request, server_id, "os_compute_api:os-deferred-delete:force")
    return Response(status_code=202)


async def _inject_network_info(request: Request, server_id: str, args: Any) -> Response:
    """202 for a server on a host (409 before it has one); the guest learns its network by DHCP and metadata."""
    ctx = request_context(request)
    api = state(request)
    inst = await api.servers.visible(server_id, ctx)
    api.policy.enforce("os_compute_api:os-admin-actions:inject_network_info", ctx, {"project_id": inst.project_id})
    if inst.host is None:
        raise Conflict(f"Instance {inst.uuid} is not ready")
    return Response(status_code=202)


SERVER_ACTIONS = {"os-resetState": _reset_state, "restore": _restore, "forceDelete": _force_delete,
                  "injectNetworkInfo": _inject_network_info}
