"""`shelve`, `shelveOffload` and `unshelve` server actions (Nova's os-shelve). Shelve makes the queued image
`<name>-shelved` (as createImage makes a snapshot) and hands the server to its host, which saves the disk into it;
with `shelved_offload_time` 0 (Nova's default) the host offloads the server at once. Unshelving a shelved server
goes to its host; an offloaded one to the conductor, which schedules it again (2.77 `availability_zone`, 2.91
`host`). Each checks the lock, as Nova's."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import Request, Response

from pocketstack.common import apikit
from pocketstack.common.app import request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Conflict
from pocketstack.compute import states
from pocketstack.compute.api.common import state
from pocketstack.compute.api.server_snapshots import image_attributes


def _checker(request: Request, ctx: RequestContext, policy: str, action: str) -> Any:
    """The in-transaction check of a shelve action: policy, lock, state (409)."""
    api = state(request)

    def check(inst: Any) -> None:
        api.policy.enforce(policy, ctx, {"project_id": inst.project_id, "user_id": inst.user_id})
        if inst.locked and not ctx.is_admin:
            raise Conflict(f"Instance {inst.uuid} is locked")
        states.check_action(action, inst.uuid, inst.vm_state, inst.task_state)

    return check


def _volume_backed(inst: Any) -> bool:
    return any(b.boot_index == 0 and b.destination_type == "volume" for b in inst.block_devices)


async def _shelve(request: Request, server_id: str, args: Any) -> Response:
    """`shelve`: the disk saved as `<name>-shelved` (not for a volume-backed server), then offloaded at once with
    shelved_offload_time 0."""
    ctx = request_context(request)
    api = state(request)
    check = _checker(request, ctx, "os_compute_api:os-shelve:shelve", "shelve")
    inst = await api.servers.visible(server_id, ctx)
    check(inst)  # 409 before an image exists
    if inst.host is None:
        raise Conflict(f"Instance {inst.uuid} is not on a host.")
    image = None
    if not _volume_backed(inst):
        image = await api.image.create_image(**image_attributes(inst, ctx, f"{inst.display_name}-shelved",
                                                                "snapshot", {}))
    try:
        host = await api.servers.start_power_action(server_id, ctx, check, "shelve", "shelve")
        assert host is not None
        await api.agents.shelve_instance(host, inst.uuid, image["id"] if image else None,
                                         offload=api.settings.compute.shelved_offload_time == 0)
    except BaseException:
        with contextlib.suppress(Exception):
            await api.servers.end_task(inst.uuid, [states.SHELVING])
        if image is not None:
            with contextlib.suppress(Exception):
                await api.image.delete_image(image["id"])
        raise
    return Response(status_code=202)


async def _shelve_offload(request: Request, server_id: str, args: Any) -> Response:
    """`shelveOffload` (admin): a shelved server leaves its host."""
    ctx = request_context(request)
    api = state(request)
    check = _checker(request, ctx, "os_compute_api:os-shelve:shelve_offload", "shelveOffload")
    host = await api.servers.start_power_action(server_id, ctx, check, "shelveOffload", "shelveOffload")
    if host is None:
        with contextlib.suppress(Exception):
            await api.servers.end_task(server_id, [states.SHELVING_OFFLOADING])
        raise Conflict(f"Instance {server_id} is not on a host.")
    try:
        await api.agents.shelve_offload_instance(host, server_id)
    except BaseException:
        with contextlib.suppress(Exception):
            await api.servers.end_task(server_id, [states.SHELVING_OFFLOADING])
        raise
    return Response(status_code=202)


def _unshelve_options(request: Request, args: Any) -> tuple[bool, str | None, str | None]:
    """(whether a zone was given, the zone, the host) of an unshelve body, validated per microversion."""
    version = apikit.version(request)
    if version < "2.77" or args is None:
        return False, None, None
    if not isinstance(args, dict):
        raise BadRequest(f"Invalid input for field/attribute unshelve. Value: {args}. {args!r} is not of type "
                         "'object', 'null'")
    allowed = {"availability_zone", "host"} if version >= "2.91" else {"availability_zone"}
    extra = sorted(set(args) - allowed)
    if extra:
        raise BadRequest(f"Additional properties are not allowed ({', '.join(repr(k) for k in extra)} "
                         f"{'was' if len(extra) == 1 else 'were'} unexpected)")
    if not args or (version < "2.91" and "availability_zone" not in args):
        raise BadRequest("Invalid input for field/attribute unshelve: 'availability_zone' is a required property")
    zone, host = args.get("availability_zone"), args.get("host")
    if "availability_zone" in args and not (zone is None and version >= "2.91") and (
            not isinstance(zone, str) or not 1 <= len(zone) <= 255):
        raise BadRequest(f"Invalid input for field/attribute availability_zone. Value: {zone}. It must be a "
                             "string of 1 to 255 characters.")
    if "host" in args and (not isinstance(host, str) or not 1 <= len(host) <= 255):
        raise BadRequest(f"Invalid input for field/attribute host. Value: {host}. It must be a string of 1 to 255 "
                         "characters.")
    return "availability_zone" in args, zone, host


async def _unshelve(request: Request, server_id: str, args: Any) -> Response:
    """`unshelve`: a shelved server runs again on its host; an offloaded one is scheduled again (conductor)."""
    ctx = request_context(request)
    api = state(request)
    zone_given, zone, host = _unshelve_options(request, args)
    inst = await api.servers.visible(server_id, ctx)
    if host is not None:
        api.policy.enforce("os_compute_api:os-shelve:unshelve_to_host", ctx, {"project_id": inst.project_id})
    if (zone_given or host is not None) and inst.vm_state == states.SHELVED:
        raise Conflict(f"The unshelve action failed: the instance {inst.uuid} is shelved but not offloaded; only a "
                       "shelved offloaded server can be unshelved to another availability zone or host.")
    if zone or host:
        zones = await api.servers.host_zones()
        if host is not None and host not in zones:
            raise BadRequest(f"Compute host {host} could not be found.")
        if zone and zone not in set(zones.values()):
            raise BadRequest(f"The requested availability zone is not available: {zone}")
        if zone and host is not None and zones[host] != zone:
            raise BadRequest(f"Host {host} is not in the availability zone {zone}.")
    check = _checker(request, ctx, "os_compute_api:os-shelve:unshelve", "unshelve")
    current = await api.servers.start_power_action(server_id, ctx, check, "unshelve", "unshelve")
    try:
        if inst.vm_state == states.SHELVED and current is not None:
            await api.agents.unshelve_instance(current, inst.uuid)
        else:
            assert api.conductor is not None
            await api.conductor.unshelve_instance(inst.uuid, ctx.request_id, availability_zone=zone, host=host)
    except BaseException:
        with contextlib.suppress(Exception):
            await api.servers.end_task(inst.uuid, [states.UNSHELVING])
        raise
    return Response(status_code=202)


# request body key -> handler, for server_actions
SERVER_ACTIONS = {"shelve": _shelve, "shelveOffload": _shelve_offload, "unshelve": _unshelve}
