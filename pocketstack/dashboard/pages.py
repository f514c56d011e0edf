"""The pages: each asks the services' public APIs as the user and renders a template."""

from __future__ import annotations

import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pocketstack.common.errors import APIError
from pocketstack.dashboard.flow import render_svg
from pocketstack.dashboard.session import UserSession
from pocketstack.dashboard.web import first, render

MICROVERSION = {"OpenStack-API-Version": "compute 2.21"}


def table(request: Request, title: str, columns: list[str], rows: list[list[Any]], **extra: Any) -> HTMLResponse:
    return render("table.html", request, title=title, columns=columns, rows=rows, **extra)


async def overview(request: Request, session: UserSession) -> Response:
    limits = (await session.call("compute", "GET", "/limits"))["limits"]["absolute"]
    bars = [(label, limits.get(used, 0), limits.get(cap, 0)) for label, used, cap in (
        ("Instances", "totalInstancesUsed", "maxTotalInstances"), ("VCPUs", "totalCoresUsed", "maxTotalCores"),
        ("RAM (MB)", "totalRAMUsed", "maxTotalRAMSize"))]
    projects = (await session.call("identity", "GET", "/auth/projects")).get("projects", [])
    return render("overview.html", request, bars=bars, projects=projects)


async def _servers(session: UserSession) -> list[dict[str, Any]]:
    return (await session.call("compute", "GET", "/servers/detail"))["servers"]


async def servers(request: Request, session: UserSession) -> Response:
    return render("servers.html", request, servers=await _servers(session))


async def server_rows(request: Request, session: UserSession) -> Response:
    """The rows htmx polls every two seconds: the status changes without a reload."""
    return render("server_rows.html", request, servers=await _servers(session))


ACTIONS = {"start": {"os-start": None}, "stop": {"os-stop": None}, "reboot": {"reboot": {"type": "SOFT"}}}


async def server_action(request: Request, session: UserSession) -> Response:
    server_id = request.path_params["server_id"]
    action = first(request.scope["dashboard_form"], "action")
    if action == "delete":
        await session.call("compute", "DELETE", f"/servers/{server_id}")
    elif action in ACTIONS:
        await session.call("compute", "POST", f"/servers/{server_id}/action", json=ACTIONS[action])
    else:
        raise APIError(f"No action {action!r}.")
    return RedirectResponse("/servers", status_code=303)


async def _console_url(session: UserSession, server_id: str, protocol: str, kind: str) -> str:
    """A console URL (with its token) from the compute API's remote-consoles."""
    body = await session.call("compute", "POST", f"/servers/{server_id}/remote-consoles",
                              json={"remote_console": {"protocol": protocol, "type": kind}},
                              headers={"OpenStack-API-Version": "compute 2.6"})
    return body["remote_console"]["url"]


async def server_console(request: Request, session: UserSession) -> Response:
    """The server's noVNC console, opened in the browser."""
    return RedirectResponse(await _console_url(session, request.path_params["server_id"], "vnc", "novnc"),
                            status_code=303)


async def serial_console(request: Request, session: UserSession) -> Response:
    """The server's serial console in xterm.js, on the serial console proxy's websocket."""
    server_id = request.path_params["server_id"]
    server = (await session.call("compute", "GET", f"/servers/{server_id}", headers=MICROVERSION))["server"]
    url = await _console_url(session, server_id, "serial", "serial")
    return render("serial.html", request, title=f"serial console of {server['name']}", server=server, url=url)


async def _launch_choices(session: UserSession) -> dict[str, Any]:
    return {"images": (await session.call("image", "GET", "/v2/images"))["images"],
            "flavors": (await session.call("compute", "GET", "/flavors"))["flavors"],
            "networks": (await session.call("network", "GET", "/v2.0/networks"))["networks"],
            "keypairs": [k["keypair"] for k in (await session.call("compute", "GET", "/os-keypairs"))["keypairs"]],
            "groups": (await session.call("network", "GET", "/v2.0/security-groups"))["security_groups"]}


async def launch_form(request: Request, session: UserSession) -> Response:
    return render("launch.html", request, **await _launch_choices(session), values={})


async def launch(request: Request, session: UserSession) -> Response:
    data = request.scope["dashboard_form"]
    server: dict[str, Any] = {"name": first(data, "name"), "imageRef": first(data, "image"),
                              "flavorRef": first(data, "flavor")}
    server["networks"] = [{"uuid": first(data, "network")}] if first(data, "network") else "none"
    if first(data, "key_name"):
        server["key_name"] = first(data, "key_name")
    if data.get("security_groups"):
        server["security_groups"] = [{"name": name} for name in data["security_groups"]]
    if first(data, "user_data"):
        server["user_data"] = base64.b64encode(first(data, "user_data").encode()).decode()
    try:
        await session.call("compute", "POST", "/servers", json={"server": server},
                           headers={"OpenStack-API-Version": "compute 2.37"})
    except APIError as exc:
        return render("launch.html", request, status=exc.status, error=exc.message,
                      **await _launch_choices(session), values={k: first(data, k) for k in data})
    return RedirectResponse("/servers", status_code=303)


def flow(settings: Any) -> Any:
    async def page(request: Request, session: UserSession) -> Response:
        """The server's boot as a sequence diagram, from the spans its create request left."""
        from pocketstack.trace.render import collect_request

        server_id = request.path_params["server_id"]
        server = (await session.call("compute", "GET", f"/servers/{server_id}", headers=MICROVERSION))["server"]
        actions = (await session.call("compute", "GET", f"/servers/{server_id}/os-instance-actions",
                                      headers=MICROVERSION))["instanceActions"]
        create = next((a for a in actions if a["action"] == "create"), None)
        trace = await collect_request(settings, create["request_id"]) if create else None
        fault = (server.get("fault") or {}).get("message") if server["status"] == "ERROR" else None
        svg = render_svg(trace["hops"], trace["total_ms"], fault) if trace else None
        return render("flow.html", request, server=server, svg=svg, fault=fault)
    return page


async def images(request: Request, session: UserSession) -> Response:
    found = (await session.call("image", "GET", "/v2/images"))["images"]
    return table(request, "Images", ["Name", "Status", "Disk format", "Size", "Visibility"],
                 [[i["name"], i["status"], i.get("disk_format"), i.get("size"), i["visibility"]] for i in found])


async def networks(request: Request, session: UserSession) -> Response:
    nets = (await session.call("network", "GET", "/v2.0/networks"))["networks"]
    subnets = {s["id"]: s for s in (await session.call("network", "GET", "/v2.0/subnets"))["subnets"]}
    return table(request, "Networks", ["Name", "Status", "External", "Subnets"],
                 [[n["name"], n["status"], n.get("router:external"),
                   ", ".join(subnets[s]["cidr"] for s in n["subnets"] if s in subnets)] for n in nets])


async def volumes(request: Request, session: UserSession, error: str | None = None) -> Response:
    found = (await session.call("volumev3", "GET", "/volumes/detail"))["volumes"]
    return render("volumes.html", request, volumes=found, servers=await _servers(session), error=error,
                  status=400 if error else 200)


async def create_volume(request: Request, session: UserSession) -> Response:
    data = request.scope["dashboard_form"]
    try:
        size = int(first(data, "size"))
    except ValueError:
        return await volumes(request, session, error="The size must be a whole number of GB.")
    try:
        await session.call("volumev3", "POST", "/volumes", json={"volume": {"name": first(data, "name"),
                                                                           "size": size}})
    except APIError as exc:
        return await volumes(request, session, error=exc.message)
    return RedirectResponse("/volumes", status_code=303)


async def attach_volume(request: Request, session: UserSession) -> Response:
    server_id = first(request.scope["dashboard_form"], "server_id")
    body = {"volumeAttachment": {"volumeId": request.path_params["volume_id"]}}
    try:
        await session.call("compute", "POST", f"/servers/{server_id}/os-volume_attachments", json=body)
    except APIError as exc:
        return await volumes(request, session, error=exc.message)
    return RedirectResponse("/volumes", status_code=303)


async def keypairs(request: Request, session: UserSession) -> Response:
    found = [k["keypair"] for k in (await session.call("compute", "GET", "/os-keypairs"))["keypairs"]]
    return table(request, "Key pairs", ["Name", "Fingerprint"], [[k["name"], k["fingerprint"]] for k in found])


async def floating_ips(request: Request, session: UserSession) -> Response:
    found = (await session.call("network", "GET", "/v2.0/floatingips"))["floatingips"]
    return table(request, "Floating IPs", ["Address", "Fixed address", "Status"],
                 [[f["floating_ip_address"], f.get("fixed_ip_address"), f["status"]] for f in found])


async def hypervisors(request: Request, session: UserSession) -> Response:
    found = (await session.call("compute", "GET", "/os-hypervisors/detail"))["hypervisors"]
    return table(request, "Hypervisors", ["Host", "State", "Status", "VCPUs used", "RAM used (MB)"],
                 [[h["hypervisor_hostname"], h["state"], h["status"], h.get("vcpus_used"),
                   h.get("memory_mb_used")] for h in found])


async def compute_services(request: Request, session: UserSession) -> Response:
    found = (await session.call("compute", "GET", "/os-services"))["services"]
    return table(request, "Compute services", ["Binary", "Host", "Status", "State"],
                 [[s["binary"], s["host"], s["status"], s["state"]] for s in found])
