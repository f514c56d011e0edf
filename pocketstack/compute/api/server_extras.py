"""What hangs off one server besides its actions: `ips`, `os-server-password`, `os-security-groups` and
`diagnostics`."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common import apikit
from pocketstack.common.app import json_response, request_context
from pocketstack.common.errors import Conflict, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import states
from pocketstack.compute.api import proxy_network
from pocketstack.compute.api.common import state
from pocketstack.compute.api.servers import addresses


async def _server(request: Request, server_id: str, action: str) -> Any:
    """The server (404 when the caller cannot see it), `action` allowed on it."""
    ctx = request_context(request)
    inst = await state(request).servers.visible(server_id, ctx)
    state(request).policy.enforce(action, ctx, {"project_id": inst.project_id})
    return inst


# ----- ips ---------------------------------------------------------------------------------------------------
def _ips(network_info: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The server's addresses by network name, as `ips` shows them (version and address only)."""
    return {name: [{"version": entry["version"], "addr": entry["addr"]} for entry in entries]
            for name, entries in addresses(network_info).items()}


async def list_ips(request: Request, server_id: str) -> Response:
    inst = await _server(request, server_id, "os_compute_api:ips:index")
    return json_response({"addresses": _ips(inst.network_info)})


async def show_ips(request: Request, server_id: str, network: str) -> Response:
    inst = await _server(request, server_id, "os_compute_api:ips:show")
    found = _ips(inst.network_info)
    if network not in found:
        raise NotFound("Instance is not a member of specified network")
    return json_response({network: found[network]})


# ----- os-server-password ------------------------------------------------------------------------------------
async def show_password(request: Request, server_id: str) -> Response:
    """The password the guest posted to the metadata service, encrypted with its key pair ('' when none)."""
    inst = await _server(request, server_id, "os_compute_api:os-server-password:show")
    return json_response({"password": inst.guest_password or ""})


async def clear_password(request: Request, server_id: str) -> Response:
    """Forget the guest's posted password (the guest may post a new one); the guest keeps its password."""
    ctx = request_context(request)
    policy = state(request).policy
    await state(request).servers.update(
        server_id, ctx, lambda inst: policy.enforce("os_compute_api:os-server-password:clear", ctx,
                                                    {"project_id": inst.project_id}), {"guest_password": None})
    return Response(status_code=204)


# ----- os-security-groups of a server ------------------------------------------------------------------------
async def server_security_groups(request: Request, server_id: str) -> Response:
    """The security groups on the server's ports, as the compute API's `os-security-groups` shows groups."""
    inst = await _server(request, server_id, "os_compute_api:os-security-groups:list")
    network = state(request).network
    group_ids: list[str] = []
    for port in await network.list_ports(device_id=inst.uuid):
        group_ids += [g for g in port.get("security_groups") or [] if g not in group_ids]
    groups = []
    if group_ids:
        _, body, _ = await network.request("GET", "/v2.0/security-groups", params=[("id", g) for g in group_ids])
        groups = body["security_groups"]
    return json_response({"security_groups": [proxy_network.security_group_view(g) for g in groups]})


# ----- diagnostics -------------------------------------------------------------------------------------------
_DIAGNOSTIC_STATE = {states.RUNNING: "running", states.PAUSED_POWER: "paused", states.SHUTDOWN: "shutdown",
                     states.CRASHED: "crashed", states.SUSPENDED_POWER: "suspended"}


async def diagnostics(request: Request, server_id: str) -> Response:
    """The server's diagnostics in the standard form of microversion 2.48 (a flat dict of the same figures
    before it), from what the compute database knows of the guest."""
    inst = await _server(request, server_id, "os_compute_api:os-server-diagnostics")
    if inst.host is None or inst.vm_state == states.BUILDING:
        raise Conflict(f"Cannot 'get_diagnostics' instance {server_id} while it is in vm_state {inst.vm_state}")
    launched = inst.launched_at
    uptime = int((utcnow() - launched).total_seconds()) if launched else None
    nics = [{"mac_address": vif.get("mac_address"), "rx_octets": 0, "rx_errors": 0, "rx_drop": 0,
             "rx_packets": 0, "rx_rate": None, "tx_octets": 0, "tx_errors": 0, "tx_drop": 0, "tx_packets": 0,
             "tx_rate": None} for vif in inst.network_info or []]
    disks = [{"read_bytes": 0, "read_requests": 0, "write_bytes": 0, "write_requests": 0, "errors_count": 0}
             for _ in range(1 + len([b for b in inst.block_devices if b.volume_id and b.boot_index != 0]))]
    body: dict[str, Any] = {
        "state": _DIAGNOSTIC_STATE.get(inst.power_state, "pending"), "driver": "libvirt", "hypervisor": "qemu",
        "hypervisor_os": "linux", "uptime": uptime, "config_drive": bool(inst.config_drive),
        "num_cpus": inst.vcpus, "num_nics": len(nics), "num_disks": len(disks),
        "memory_details": {"maximum": inst.memory_mb, "used": 0},
        "cpu_details": [{"id": index, "time": 0, "utilisation": None} for index in range(inst.vcpus)],
        "nic_details": nics, "disk_details": disks}
    if apikit.version(request) >= "2.48":
        return json_response(body)
    flat: dict[str, Any] = {"memory": inst.memory_mb * 1024, "uptime": uptime or 0}
    for index in range(inst.vcpus):
        flat[f"cpu{index}_time"] = 0
    for index, nic in enumerate(nics):
        flat.update({f"tap{index}_rx": 0, f"tap{index}_tx": 0, f"tap{index}_mac": nic["mac_address"]})
    return json_response(flat)
