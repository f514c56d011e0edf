"""The network pages: security groups and their rules, the network agents (admins), and the topology picture
(external network, routers, project networks and the servers' ports on them) drawn as SVG from the network API."""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from pocketstack.common.errors import APIError
from pocketstack.dashboard.session import UserSession
from pocketstack.dashboard.web import first, render

PROTOCOLS = ("tcp", "udp", "icmp", "any")


async def security_groups(request: Request, session: UserSession, error: str | None = None) -> Response:
    groups = (await session.call("network", "GET", "/v2.0/security-groups"))["security_groups"]
    for group in groups:
        group["security_group_rules"].sort(key=lambda r: (r["direction"], r["ethertype"], r.get("protocol") or "",
                                                          r.get("port_range_min") or 0))
    return render("security_groups.html", request, groups=groups, protocols=PROTOCOLS, error=error,
                  status=400 if error else 200)


def _port(value: str, what: str) -> int | None:
    if not value.strip():
        return None
    if not value.strip().isdigit():
        raise ValueError(f"The {what} must be a port number.")
    return int(value)


async def add_rule(request: Request, session: UserSession) -> Response:
    data = request.scope["dashboard_form"]
    protocol = first(data, "protocol", "tcp")
    try:
        low, high = _port(first(data, "port_min"), "first port"), _port(first(data, "port_max"), "last port")
    except ValueError as exc:
        return await security_groups(request, session, error=str(exc))
    rule: dict[str, Any] = {"security_group_id": request.path_params["group_id"],
                            "direction": first(data, "direction", "ingress"), "ethertype": "IPv4",
                            "protocol": None if protocol == "any" else protocol,
                            "remote_ip_prefix": first(data, "remote") or None}
    if low is not None:
        rule.update(port_range_min=low, port_range_max=high if high is not None else low)
    try:
        await session.call("network", "POST", "/v2.0/security-group-rules", json={"security_group_rule": rule})
    except APIError as exc:  # Neutron's message (a bad CIDR, a port range without a protocol, a duplicate)
        return await security_groups(request, session, error=exc.message)
    return RedirectResponse("/security-groups", status_code=303)


async def delete_rule(request: Request, session: UserSession) -> Response:
    try:
        await session.call("network", "DELETE", f"/v2.0/security-group-rules/{request.path_params['rule_id']}")
    except APIError as exc:
        return await security_groups(request, session, error=exc.message)
    return RedirectResponse("/security-groups", status_code=303)


async def network_agents(request: Request, session: UserSession) -> Response:
    found = (await session.call("network", "GET", "/v2.0/agents"))["agents"]
    return render("table.html", request, title="Network agents",
                  columns=["Type", "Host", "Alive", "Admin state", "Binary"],
                  rows=[[a["agent_type"], a["host"], "yes" if a["alive"] else "no",
                         "up" if a["admin_state_up"] else "down", a["binary"]] for a in found])


async def topology(request: Request, session: UserSession) -> Response:
    nets = (await session.call("network", "GET", "/v2.0/networks"))["networks"]
    subnets = (await session.call("network", "GET", "/v2.0/subnets"))["subnets"]
    routers = (await session.call("network", "GET", "/v2.0/routers"))["routers"]
    ports = (await session.call("network", "GET", "/v2.0/ports"))["ports"]
    servers = (await session.call("compute", "GET", "/servers"))["servers"]
    svg = topology_svg(nets, subnets, routers, ports, {s["id"]: s["name"] for s in servers})
    return render("topology.html", request, svg=svg)


NET_W, GAP, TOP, BUS_H = 190, 40, 30, 420
ROUTER_COLOUR, SERVER_COLOUR, EXTERNAL_COLOUR, NET_COLOUR = "#8250df", "#1a7f37", "#bf8700", "#1f6feb"


def topology_svg(nets: list[dict[str, Any]], subnets: list[dict[str, Any]], routers: list[dict[str, Any]],
                 ports: list[dict[str, Any]], server_names: dict[str, str]) -> str:
    """One vertical bar per network (external ones first, with their CIDRs), a box per router between its gateway
    network and its interfaces, a box per server beside each network it has a port on."""
    cidrs: dict[str, list[str]] = {}
    for subnet in subnets:
        cidrs.setdefault(subnet["network_id"], []).append(subnet["cidr"])
    ordered = sorted(nets, key=lambda n: (not n.get("router:external"), n["name"]))
    x_of = {n["id"]: 40 + i * (NET_W + GAP) for i, n in enumerate(ordered)}
    width = max(len(ordered), 1) * (NET_W + GAP) + 40
    parts: list[str] = []
    for net in ordered:
        x = x_of[net["id"]]
        colour = EXTERNAL_COLOUR if net.get("router:external") else NET_COLOUR
        parts.append(f'<g class="network" data-network="{escape(net["name"])}">'
                     f'<rect x="{x}" y="{TOP}" width="14" height="{BUS_H}" rx="4" fill="{colour}"/>'
                     f'<text x="{x + 20}" y="{TOP + 14}" font-weight="bold">{escape(net["name"])}</text>'
                     f'<text x="{x + 20}" y="{TOP + 30}" font-size="11">{escape(", ".join(cidrs.get(net["id"], [])))}'
                     '</text></g>')
    slot: dict[str, int] = {}  # boxes drawn beside each network so far

    def box(net_id: str, label: str, colour: str, kind: str, addresses: str) -> tuple[int, int]:
        index = slot.get(net_id, 0)
        slot[net_id] = index + 1
        x, y = x_of[net_id] + 40, TOP + 50 + index * 62
        parts.append(f'<g class="{kind}" data-name="{escape(label)}"><line x1="{x_of[net_id] + 14}" y1="{y + 20}" '
                     f'x2="{x}" y2="{y + 20}" stroke="#57606a"/><rect x="{x}" y="{y}" width="{NET_W - 50}" '
                     f'height="44" rx="6" fill="#fff" stroke="{colour}" stroke-width="2"/>'
                     f'<text x="{x + 8}" y="{y + 18}" fill="{colour}" font-weight="bold">{escape(label)}</text>'
                     f'<text x="{x + 8}" y="{y + 35}" font-size="11">{escape(addresses)}</text></g>')
        return x, y

    by_router: dict[str, list[dict[str, Any]]] = {}
    for port in ports:
        if port["device_owner"] in ("network:router_interface", "network:router_gateway"):
            by_router.setdefault(port["device_id"], []).append(port)
    for router in routers:
        label = f"router {router['name'] or router['id'][:8]}"
        gateway = router.get("external_gateway_info") or {}
        if gateway.get("network_id") in x_of:  # the gateway port is not the project's: the router says where it is
            box(gateway["network_id"], label, ROUTER_COLOUR, "router", ", ".join(
                ip["ip_address"] for ip in gateway.get("external_fixed_ips") or []) + " (gateway)")
        for port in by_router.get(router["id"], []):
            if port["network_id"] in x_of and port["network_id"] != gateway.get("network_id"):
                box(port["network_id"], label, ROUTER_COLOUR, "router",
                    ", ".join(ip["ip_address"] for ip in port["fixed_ips"]))
    for port in ports:
        if port["device_owner"].startswith("compute:") and port["network_id"] in x_of:
            name = server_names.get(port["device_id"], port["device_id"][:8])
            box(port["network_id"], name, SERVER_COLOUR, "server",
                ", ".join(ip["ip_address"] for ip in port["fixed_ips"]))
    height = max([TOP + BUS_H + 20] + [TOP + 50 + n * 62 + 20 for n in slot.values()])
    return (f'<svg class="topology" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="sans-serif" font-size="12">{"".join(parts)}</svg>')
