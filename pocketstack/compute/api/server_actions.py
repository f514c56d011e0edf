"""`POST /servers/{id}/action` (start, stop, reboot, pause, suspend, lock, console output; createImage and
createBackup in server_snapshots; shelve, shelveOffload, unshelve in server_shelve;
rebuild in server_rebuild; rescue, unrescue in server_rescue; the console URLs in server_consoles) and
`os-interface`."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common import apikit
from pocketstack.common.apikit import is_uuid
from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.common.rpc import RemoteError
from pocketstack.compute import states
from pocketstack.compute.api import (
    proxy_network,
    server_admin_actions,
    server_consoles,
    server_rebuild,
    server_rescue,
    server_shelve,
    server_snapshots,
)
from pocketstack.compute.api.common import state
from pocketstack.compute.store.hosts import HostStore
from pocketstack.compute.virt.driver import ATTACH_INTERFACE

# request body key -> (instance action, policy, action name recorded in os-instance-actions)
POWER = {
    "os-start": ("start", "os_compute_api:servers:start", "start"),
    "os-stop": ("stop", "os_compute_api:servers:stop", "stop"),
    "pause": ("pause", "os_compute_api:os-pause-server:pause", "pause"),
    "unpause": ("unpause", "os_compute_api:os-pause-server:unpause", "unpause"),
    "suspend": ("suspend", "os_compute_api:os-suspend-server:suspend", "suspend"),
    "resume": ("resume", "os_compute_api:os-suspend-server:resume", "resume"),
}


async def _power(request: Request, server_id: str, action: str, policy: str, recorded: str) -> Response:
    ctx = request_context(request)
    api = state(request)

    def check(inst: Any) -> None:
        api.policy.enforce(policy, ctx, {"project_id": inst.project_id})
        if inst.locked and not ctx.is_admin:
            raise Conflict(f"Instance {inst.uuid} is locked")

    host = await api.servers.start_power_action(server_id, ctx, check, action, recorded)
    if host is None:
        raise Conflict(f"Instance {server_id} is not on a host.")
    await api.agents.power_action(host, server_id, action)
    return Response(status_code=202)


async def server_action(request: Request, server_id: str) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid input: the body must hold exactly one action.")
    (name, args), = body.items()
    if name in POWER:
        return await _power(request, server_id, *POWER[name])
    if name == "reboot":
        kind = (args or {}).get("type") if isinstance(args, dict) else None
        if kind not in ("SOFT", "HARD", "soft", "hard"):
            raise BadRequest("Invalid input for field/attribute type. Value: "
                             f"{kind}. '{kind}' is not one of ['SOFT', 'HARD', 'soft', 'hard']")
        action = "reboot_hard" if kind.upper() == "HARD" else "reboot"
        return await _power(request, server_id, action, "os_compute_api:servers:reboot", "reboot")
    if name in ("lock", "unlock"):
        return await _lock(request, server_id, name, args)
    if name == "os-getConsoleOutput":
        return await _console(request, server_id, args)
    if name in server_admin_actions.SERVER_ACTIONS:
        return await server_admin_actions.SERVER_ACTIONS[name](request, server_id, args)
    if name in server_snapshots.SERVER_ACTIONS:
        return await server_snapshots.SERVER_ACTIONS[name](request, server_id, args)
    if name in server_rebuild.SERVER_ACTIONS:
        return await server_rebuild.SERVER_ACTIONS[name](request, server_id, args)
    if name in server_rescue.SERVER_ACTIONS:
        return await server_rescue.SERVER_ACTIONS[name](request, server_id, args)
    if name in server_shelve.SERVER_ACTIONS:
        return await server_shelve.SERVER_ACTIONS[name](request, server_id, args)
    if name in server_consoles.SERVER_ACTIONS:
        return await server_consoles.SERVER_ACTIONS[name](request, server_id, args)
    if name in proxy_network.SERVER_ACTIONS:
        return await proxy_network.SERVER_ACTIONS[name](request, server_id, args)
    raise BadRequest(f"There is no such action: {name}")


async def _lock(request: Request, server_id: str, name: str, args: Any) -> Response:
    ctx = request_context(request)
    policy = state(request).policy
    reason = args.get("locked_reason") if name == "lock" and isinstance(args, dict) else None

    def check(inst: Any) -> None:
        policy.enforce(f"os_compute_api:os-lock-server:{name}", ctx, {"project_id": inst.project_id})
        if name == "lock" and reason is not None and apikit.version(request) < "2.73":
            raise BadRequest("Invalid input: 'locked_reason' needs microversion 2.73 or later.")
        if name == "unlock" and inst.locked_by == "admin" and not ctx.is_admin:
            policy.enforce("os_compute_api:os-lock-server:unlock:unlock_override", ctx,
                           {"project_id": inst.project_id})

    await state(request).servers.set_lock(server_id, ctx, check, locked=name == "lock", reason=reason)
    return Response(status_code=202)


async def _console(request: Request, server_id: str, args: Any) -> Response:
    ctx = request_context(request)
    length = args.get("length") if isinstance(args, dict) else None
    if length is not None:
        try:
            length = int(length)
        except (TypeError, ValueError):
            raise BadRequest(f"Invalid input for field/attribute length. Value: {length}.")
        if length < -1:
            raise BadRequest("Invalid input for field/attribute length: it must be -1 or more.")
        if length == -1:
            length = None
    inst = await state(request).servers.visible(server_id, ctx)
    state(request).policy.enforce("os_compute_api:os-console-output", ctx, {"project_id": inst.project_id})
    host = inst.host
    if host is None or inst.vm_state == states.BUILDING:
        raise Conflict(f"Instance {server_id} is not ready yet: it has no console.")
    try:
        output = await state(request).agents.get_console_output(host, server_id, length)
    except RemoteError as exc:
        raise NotFound(f"The console of instance {server_id} is not available: {exc}")
    return json_response({"output": output})


# ----- os-interface --------------------------------------------------------------------------------------
async def _interface_server(request: Request, server_id: str, action: str) -> Any:
    """The server (404 when the caller cannot see it), `os-attach-interfaces:<action>` allowed on it."""
    ctx = request_context(request)
    inst = await state(request).servers.visible(server_id, ctx)
    state(request).policy.enforce(f"os_compute_api:os-attach-interfaces:{action}", ctx,
                                  {"project_id": inst.project_id})
    return inst


def _interface_view(vif: dict[str, Any], server_id: str) -> dict[str, Any]:
    return {"port_id": vif["id"], "net_id": vif["network_id"], "mac_addr": vif["mac_address"],
            "port_state": "ACTIVE", "fixed_ips": [{"subnet_id": ip.get("subnet_id"), "ip_address": ip["ip_address"]}
                                                   for ip in vif.get("fixed_ips", [])]}


async def list_interfaces(request: Request, server_id: str) -> Response:
    inst = await _interface_server(request, server_id, "list")
    return json_response({"interfaceAttachments": [_interface_view(v, server_id) for v in inst.network_info]})


async def show_interface(request: Request, server_id: str, port_id: str) -> Response:
    inst = await _interface_server(request, server_id, "show")
    vif = next((v for v in inst.network_info if v["id"] == port_id), None)
    if vif is None:
        raise NotFound(f"Port {port_id} is not attached")
    return json_response({"interfaceAttachment": _interface_view(vif, server_id)})


async def attach_interface(request: Request, server_id: str) -> Response:
    body = await json_body(request)
    spec = body.get("interfaceAttachment") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        raise BadRequest("Invalid input: 'interfaceAttachment' is a required property.")
    net_id, port_id = spec.get("net_id"), spec.get("port_id")
    if bool(net_id) == bool(port_id):
        raise BadRequest("Must not input both network_id and port_id" if net_id else
                         "Invalid input: give a net_id or a port_id.")
    for value in (net_id, port_id):
        if value and not is_uuid(value):
            raise BadRequest(f"Invalid input: {value} is not a 'uuid'")
    fixed_ip = (spec.get("fixed_ips") or [{}])[0].get("ip_address")
    inst = await _interface_server(request, server_id, "create")
    if inst.vm_state not in (states.ACTIVE, states.STOPPED, states.PAUSED) or inst.task_state is not None:
        raise Conflict(f"Cannot 'attach_interface' instance {server_id} while it is in vm_state {inst.vm_state}")
    host = inst.host
    traits = await HostStore(state(request).db).node_traits(host)
    if traits is not None and ATTACH_INTERFACE not in traits:  # the host's driver cannot hot-plug a port
        raise BadRequest(f"Attaching interfaces is not supported for instance {server_id}.")
    api = state(request).network
    try:
        if port_id:
            port = await api.get_port(port_id)
            if port.get("device_id"):
                raise Conflict(f"Port {port_id} is still in use.")
        else:
            await api.get_network(net_id)
    except NotFound:
        raise NotFound(f"{'Port' if port_id else 'Network'} {port_id or net_id} could not be found.")
    try:
        vif = await state(request).agents.attach_interface(host, server_id, net_id, port_id, fixed_ip)
    except RemoteError as exc:
        raise BadRequest(f"Failed to attach network adapter device to {server_id}: {exc}")
    return json_response({"interfaceAttachment": _interface_view(vif, server_id)})


async def detach_interface(request: Request, server_id: str, port_id: str) -> Response:
    inst = await _interface_server(request, server_id, "delete")
    if not any(v["id"] == port_id for v in inst.network_info):
        raise NotFound(f"Port {port_id} is not attached")
    await state(request).agents.detach_interface(inst.host, server_id, port_id)
    return Response(status_code=202)


# ----- os-server-external-events --------------------------------------------------------------------------
async def external_events(request: Request) -> Response:
    ctx = request_context(request)
    state(request).policy.enforce("os_compute_api:os-server-external-events:create", ctx, {})
    body = await json_body(request)
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list) or not events:
        raise BadRequest("Invalid input: 'events' must be a non-empty list.")
    for event in events:
        if not isinstance(event, dict) or not event.get("name") or not event.get("server_uuid"):
            raise BadRequest("Invalid input: each event needs a 'name' and a 'server_uuid'.")
    hosts = await state(request).servers.hosts([e["server_uuid"] for e in events if is_uuid(e["server_uuid"])])
    results = []
    for event in events:
        result = {"name": event["name"], "server_uuid": event["server_uuid"], "tag": event.get("tag"),
                  "status": event.get("status", "completed")}
        host = hosts.get(event["server_uuid"])
        result["code"] = 404 if host is None else 200
        if host is not None:
            await state(request).agents.external_instance_event(host, event["server_uuid"], event["name"],
                                                                event.get("tag"), result["status"])
        results.append(result)
    accepted = sum(1 for result in results if result["code"] == 200)
    return json_response({"events": results}, status=200 if accepted == len(results) else 207)
