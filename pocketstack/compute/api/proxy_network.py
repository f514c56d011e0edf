"""The network proxies Nova still serves up to microversion 2.35: `os-security-groups`, `os-security-group-rules`,
`os-floating-ips` (and pools), `os-networks`, `os-tenant-networks`, in the compute API's words, translated to the
network service's API over REST; and the server actions that use them (`addSecurityGroup`, `removeSecurityGroup`,
`addFloatingIp`, `removeFloatingIp`)."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import Request, Response

from pocketstack.common import apikit
from pocketstack.common.apikit import is_uuid
from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.errors import APIError, BadRequest, Conflict, NotFound
from pocketstack.compute.api.common import state
from pocketstack.compute.api.proxy_images import require_proxy

SG_PATH = "/v2.0/security-groups"
PROTOCOLS = ("tcp", "udp", "icmp")


def _project_scope(request: Request, ctx: Any) -> list[tuple[str, str]]:
    """The project filter of a list: the caller's, unless an admin asks for all_tenants."""
    q = request.query_params
    if ctx.is_admin and q.get("all_tenants", "").lower() not in ("", "0", "false", "no"):
        return []
    return [("project_id", ctx.project_id)]


# ----- security groups ---------------------------------------------------------------------------------------
def _rule_view(rule: dict[str, Any], names: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A network security group rule as Nova shows one (ingress only; -1 or 1-65535 for protocols without ports)."""
    protocol = rule.get("protocol")
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if protocol and low is None and high is None:
        low, high = (1, 65535) if protocol.lower() in ("tcp", "udp") else (-1, -1)
    view: dict[str, Any] = {"id": rule["id"], "parent_group_id": rule["security_group_id"], "ip_protocol": protocol,
                            "from_port": low, "to_port": high, "group": {}, "ip_range": {}}
    remote = rule.get("remote_group_id")
    if remote:
        group = names.get(remote, {})
        view["group"] = {"name": group.get("name", remote), "tenant_id": group.get("project_id", "")}
    else:
        view["ip_range"] = {"cidr": rule.get("remote_ip_prefix") or
                            ("::/0" if rule.get("ethertype") == "IPv6" else "0.0.0.0/0")}
    return view


def security_group_view(group: dict[str, Any], names: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A network security group as the compute API's `os-security-groups` shows it."""
    known = {group["id"]: group, **(names or {})}
    return {"id": group["id"], "name": group["name"], "description": group.get("description") or "",
            "tenant_id": group.get("project_id") or group.get("tenant_id") or "",
            "rules": [_rule_view(r, known) for r in group.get("security_group_rules") or []
                      if r.get("direction") == "ingress"]}


async def _group(request: Request, group_id: str) -> dict[str, Any]:
    try:
        _, body, _ = await state(request).network.request("GET", f"{SG_PATH}/{group_id}")
    except NotFound:
        raise NotFound(f"Security group {group_id} not found.") from None
    return body["security_group"]


def _text(value: Any, what: str, *, empty: bool) -> str:
    """A security group's name or description as Nova validates it (a string, at most 255, stripped non-empty)."""
    if value is None and empty:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"Security group {what} is not a string or unicode")
    if not value.strip() and not empty:
        raise BadRequest(f"Security group {what} cannot be empty.")
    if len(value) > 255:
        raise BadRequest(f"Security group {what} should not be greater than 255 characters.")
    return value


def _group_body(raw: Any) -> dict[str, Any]:
    spec = raw.get("security_group") if isinstance(raw, dict) else None
    if not isinstance(spec, dict):
        raise BadRequest("Invalid input: 'security_group' is a required property.")
    return spec


async def list_security_groups(request: Request) -> Response:
    require_proxy(request)
    ctx = apikit.enforce(request, state(request), "os_compute_api:os-security-groups:get")
    _, body, _ = await state(request).network.request("GET", SG_PATH, params=_project_scope(request, ctx) or None)
    groups = body["security_groups"]
    names = {g["id"]: g for g in groups}
    q = request.query_params
    offset = int(q["offset"]) if q.get("offset", "").isdigit() else 0
    limit = int(q["limit"]) if q.get("limit", "").isdigit() else None
    groups = groups[offset:offset + limit if limit is not None else None]
    return json_response({"security_groups": [security_group_view(g, names) for g in groups]})


async def show_security_group(request: Request, group_id: str) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-security-groups:show")
    return json_response({"security_group": security_group_view(await _group(request, group_id))})


async def create_security_group(request: Request) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-security-groups:create")
    spec = _group_body(await json_body(request))
    name = _text(spec.get("name"), "name", empty=False)
    description = _text(spec.get("description"), "description", empty=True)
    try:
        _, body, _ = await state(request).network.request(
            "POST", SG_PATH, json={"security_group": {"name": name, "description": description}})
    except Conflict as exc:
        raise BadRequest(str(exc)) from None
    return json_response({"security_group": security_group_view(body["security_group"])})


async def update_security_group(request: Request, group_id: str) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-security-groups:update")
    spec = _group_body(await json_body(request))
    changes: dict[str, str] = {}
    if "name" in spec:
        changes["name"] = _text(spec["name"], "name", empty=False)
    if "description" in spec:
        changes["description"] = _text(spec["description"], "description", empty=True)
    await _group(request, group_id)
    _, body, _ = await state(request).network.request("PUT", f"{SG_PATH}/{group_id}",
                                                      json={"security_group": changes})
    return json_response({"security_group": security_group_view(body["security_group"])})


async def delete_security_group(request: Request, group_id: str) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-security-groups:delete")
    group = await _group(request, group_id)
    if group["name"] == "default":
        raise BadRequest("Removing default security group not allowed.")
    try:
        await state(request).network.request("DELETE", f"{SG_PATH}/{group_id}")
    except Conflict as exc:
        raise BadRequest(str(exc)) from None
    return Response(status_code=202)


# ----- security group rules ----------------------------------------------------------------------------------
def _port(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field/attribute {what}. Value: {value}. '{value}' is not an integer")


def _rule_spec(raw: Any) -> dict[str, Any]:
    """The network rule of a compute `security_group_rule` body (400 on any bad field, as Nova validates)."""
    spec = raw.get("security_group_rule") if isinstance(raw, dict) else None
    if not isinstance(spec, dict):
        raise BadRequest("Invalid input: 'security_group_rule' is a required property.")
    parent = spec.get("parent_group_id")
    if not isinstance(parent, str) or not is_uuid(parent):
        raise BadRequest("Security group id should be uuid")
    protocol = spec.get("ip_protocol")
    low, high = _port(spec.get("from_port"), "from_port"), _port(spec.get("to_port"), "to_port")
    rule: dict[str, Any] = {"security_group_id": parent, "direction": "ingress"}
    if protocol is not None:
        if not isinstance(protocol, str) or protocol.lower() not in PROTOCOLS:
            raise BadRequest(f"Invalid IP protocol {protocol}.")
        protocol = protocol.lower()
        if low is None or high is None:
            raise BadRequest("Invalid port range: from_port and to_port are required with ip_protocol.")
        if protocol == "icmp":
            if not -1 <= low <= 255 or not -1 <= high <= 255:
                raise BadRequest(f"Invalid port range {low}:{high}. Type and Code must be integers for ICMP "
                                 "protocol type")
            rule.update(protocol="icmp", port_range_min=None if low == -1 else low,
                        port_range_max=None if high == -1 or low == -1 else high)
        else:
            if not 1 <= low <= 65535 or not 1 <= high <= 65535 or low > high:
                raise BadRequest(f"Invalid port range {low}:{high}. Valid {protocol.upper()} ports should be "
                                 "between 1-65535")
            rule.update(protocol=protocol, port_range_min=low, port_range_max=high)
    elif low is not None or high is not None:
        raise BadRequest("Invalid port range: ports need an ip_protocol.")
    group_id, cidr = spec.get("group_id"), spec.get("cidr")
    if group_id:
        if not isinstance(group_id, str) or not is_uuid(group_id):
            raise BadRequest("Security group id should be uuid")
        rule["remote_group_id"] = group_id
        rule["ethertype"] = "IPv4"
    else:
        try:
            network = ipaddress.ip_interface(cidr or "0.0.0.0/0")
        except (TypeError, ValueError):
            raise BadRequest(f"Invalid cidr {cidr}.") from None
        # as sent, host bits too (Neutron keeps them, with its normalized_cidr beside)
        rule["remote_ip_prefix"] = network.with_prefixlen
        rule["ethertype"] = "IPv6" if network.version == 6 else "IPv4"
    return rule


async def create_security_group_rule(request: Request) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-security-groups:rule:create")
    rule = _rule_spec(await json_body(request))
    parent = await _group(request, rule["security_group_id"])
    names = {parent["id"]: parent}
    if rule.get("remote_group_id"):
        remote = await _group(request, rule["remote_group_id"])
        names[remote["id"]] = remote
    try:
        _, body, _ = await state(request).network.request("POST", "/v2.0/security-group-rules",
                                                          json={"security_group_rule": rule})
    except Conflict:
        raise BadRequest(f"This rule already exists in group {parent['id']}") from None
    return json_response({"security_group_rule": _rule_view(body["security_group_rule"], names)})


async def delete_security_group_rule(request: Request, rule_id: str) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-security-groups:rule:delete")
    try:
        await state(request).network.request("DELETE", f"/v2.0/security-group-rules/{rule_id}")
    except NotFound:
        raise NotFound(f"Security group rule {rule_id} not found.") from None
    return Response(status_code=202)


# ----- floating IPs ------------------------------------------------------------------------------------------
async def _external_networks(request: Request) -> list[dict[str, Any]]:
    _, body, _ = await state(request).network.request("GET", "/v2.0/networks",
                                                      params={"router:external": "true"})
    return body["networks"]


async def _floating_view(request: Request, fip: dict[str, Any],
                         pools: dict[str, str] | None = None) -> dict[str, Any]:
    """A network floating IP as Nova shows one: its pool's name and the server of its port."""
    network = state(request).network
    if pools is None:
        pools = {n["id"]: n["name"] for n in await _external_networks(request)}
    instance_id = None
    if fip.get("port_id"):
        try:
            instance_id = (await network.get_port(fip["port_id"])).get("device_id") or None
        except NotFound:
            instance_id = None
    return {"id": fip["id"], "ip": fip["floating_ip_address"], "fixed_ip": fip.get("fixed_ip_address"),
            "pool": pools.get(fip["floating_network_id"], fip["floating_network_id"]), "instance_id": instance_id}


async def _floating_ip(request: Request, floating_ip_id: str) -> dict[str, Any]:
    try:
        _, body, _ = await state(request).network.request("GET", f"/v2.0/floatingips/{floating_ip_id}")
    except NotFound:
        raise NotFound(f"Floating IP not found for ID {floating_ip_id}") from None
    return body["floatingip"]


async def list_floating_ip_pools(request: Request) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-floating-ip-pools")
    return json_response({"floating_ip_pools": [{"name": n["name"]} for n in await _external_networks(request)]})


async def list_floating_ips(request: Request) -> Response:
    require_proxy(request)
    ctx = apikit.enforce(request, state(request), "os_compute_api:os-floating-ips:list")
    _, body, _ = await state(request).network.request("GET", "/v2.0/floatingips",
                                                      params={"project_id": ctx.project_id})
    pools = {n["id"]: n["name"] for n in await _external_networks(request)}
    return json_response({"floating_ips": [await _floating_view(request, f, pools) for f in body["floatingips"]]})


async def show_floating_ip(request: Request, floating_ip_id: str) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-floating-ips:show")
    return json_response({"floating_ip": await _floating_view(request, await _floating_ip(request, floating_ip_id))})


async def create_floating_ip(request: Request) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-floating-ips:create")
    raw = await json_body(request) if await request.body() else None
    pool = raw.get("pool") if isinstance(raw, dict) else None
    pools = await _external_networks(request)
    if pool is not None:
        found = [n for n in pools if n["name"] == pool or n["id"] == pool]
    else:
        found = pools if len(pools) == 1 else []
    if not found:
        raise NotFound("Floating IP pool not found.")
    try:
        _, body, _ = await state(request).network.request(
            "POST", "/v2.0/floatingips", json={"floatingip": {"floating_network_id": found[0]["id"]}})
    except Conflict:
        raise NotFound(f"No more floating IPs in pool {found[0]['name']}.") from None
    return json_response({"floating_ip": await _floating_view(request, body["floatingip"],
                                                              {found[0]["id"]: found[0]["name"]})})


async def delete_floating_ip(request: Request, floating_ip_id: str) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-floating-ips:delete")
    await _floating_ip(request, floating_ip_id)
    await state(request).network.request("DELETE", f"/v2.0/floatingips/{floating_ip_id}")
    return Response(status_code=202)


# ----- os-networks, os-tenant-networks -----------------------------------------------------------------------
_LEGACY_NETWORK_FIELDS = ("bridge", "bridge_interface", "broadcast", "cidr", "cidr_v6", "created_at", "deleted",
                          "deleted_at", "dhcp_server", "dhcp_start", "dns1", "dns2", "enable_dhcp", "gateway",
                          "gateway_v6", "host", "injected", "mtu", "multi_host", "netmask", "netmask_v6",
                          "priority", "project_id", "rxtx_base", "share_address", "updated_at", "vlan",
                          "vpn_private_address", "vpn_public_address", "vpn_public_port")


async def _networks(request: Request) -> list[dict[str, Any]]:
    _, body, _ = await state(request).network.request("GET", "/v2.0/networks")
    return body["networks"]


async def _network(request: Request, network_id: str) -> dict[str, Any]:
    try:
        return await state(request).network.get_network(network_id)
    except NotFound:
        raise NotFound("Network not found") from None


def _legacy_network(network: dict[str, Any]) -> dict[str, Any]:
    """A network as nova-network's `os-networks` showed one (what a network of the network service has of it)."""
    view: dict[str, Any] = dict.fromkeys(_LEGACY_NETWORK_FIELDS)
    view.update(id=network["id"], label=network["name"], mtu=network.get("mtu"),
                project_id=network.get("project_id"), deleted=False)
    return view


def _tenant_network(network: dict[str, Any]) -> dict[str, Any]:
    return {"id": network["id"], "label": network["name"], "cidr": None}


async def list_networks(request: Request) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-networks:list")
    return json_response({"networks": [_legacy_network(n) for n in await _networks(request)]})


async def show_network(request: Request, network_id: str) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-networks:show")
    return json_response({"network": _legacy_network(await _network(request, network_id))})


async def list_tenant_networks(request: Request) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-tenant-networks:list")
    return json_response({"networks": [_tenant_network(n) for n in await _networks(request)]})


async def show_tenant_network(request: Request, network_id: str) -> Response:
    require_proxy(request)
    apikit.enforce(request, state(request), "os_compute_api:os-tenant-networks:show")
    return json_response({"network": _tenant_network(await _network(request, network_id))})


# ----- server actions ----------------------------------------------------------------------------------------
async def _action_server(request: Request, server_id: str, action: str) -> Any:
    ctx = request_context(request)
    inst = await state(request).servers.visible(server_id, ctx)
    state(request).policy.enforce(action, ctx, {"project_id": inst.project_id})
    return inst


def _group_name(args: Any) -> str:
    name = args.get("name") if isinstance(args, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("Invalid input: 'name' of the security group is a required property.")
    return name.strip()


async def _find_group(request: Request, name: str, project_id: str) -> dict[str, Any]:
    _, body, _ = await state(request).network.request("GET", SG_PATH, params={"project_id": project_id})
    found = [g for g in body["security_groups"] if g["id"] == name] or \
        [g for g in body["security_groups"] if g["name"] == name]
    if not found:
        raise NotFound(f"Security group {name} not found for project {project_id}.")
    if len(found) > 1:
        raise Conflict(f"Multiple security groups named {name}: use its id.")
    return found[0]


async def _add_security_group(request: Request, server_id: str, args: Any) -> Response:
    """`addSecurityGroup`: the group on every port of the server, and in its list."""
    inst = await _action_server(request, server_id, "os_compute_api:os-security-groups:add")
    group = await _find_group(request, _group_name(args), inst.project_id)
    network = state(request).network
    ports = await network.list_ports(device_id=inst.uuid)
    if not ports:
        raise BadRequest(f"Instance {server_id} has no network ports: no security group can be added.")
    for port in ports:
        groups = port.get("security_groups") or []
        if group["id"] in groups:
            raise BadRequest(f"Security group {group['name']} is already associated with the instance "
                             f"{server_id}")
    for port in ports:
        await network.update_port(port["id"], security_groups=[*(port.get("security_groups") or []), group["id"]])
    await _record_groups(request, inst, ports, add=group)
    return Response(status_code=202)


async def _remove_security_group(request: Request, server_id: str, args: Any) -> Response:
    """`removeSecurityGroup`: the group off every port of the server (404 when it is on none)."""
    inst = await _action_server(request, server_id, "os_compute_api:os-security-groups:remove")
    group = await _find_group(request, _group_name(args), inst.project_id)
    network = state(request).network
    ports = [p for p in await network.list_ports(device_id=inst.uuid) if group["id"] in
             (p.get("security_groups") or [])]
    if not ports:
        raise BadRequest(f"Security group {group['name']} not associated with the instance {server_id}")
    for port in ports:
        await network.update_port(port["id"], security_groups=[g for g in port["security_groups"]
                                                                if g != group["id"]])
    await _record_groups(request, inst, ports, remove=group)
    return Response(status_code=202)


async def _record_groups(request: Request, inst: Any, ports: list[dict[str, Any]], *,
                         add: dict[str, Any] | None = None, remove: dict[str, Any] | None = None) -> None:
    """The server's own list of security groups (what its body shows) after an add or a remove."""
    groups = [g for g in inst.security_groups or [] if not remove or g.get("id") != remove["id"]]
    if add and all(g.get("id") != add["id"] for g in groups):
        groups.append({"id": add["id"], "name": add["name"]})
    ctx = request_context(request)
    await state(request).servers.update(inst.uuid, ctx, lambda _: None, {"security_groups": groups})


def _address(args: Any, key: str, required: bool) -> str | None:
    value = args.get(key) if isinstance(args, dict) else None
    if value is None and not required:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value}. "
                         f"'{value}' is not a 'ip-address'") from None


async def _floating_by_address(request: Request, address: str) -> dict[str, Any]:
    _, body, _ = await state(request).network.request("GET", "/v2.0/floatingips",
                                                      params={"floating_ip_address": address})
    if not body["floatingips"]:
        raise NotFound(f"floating IP not found for address {address}")
    return body["floatingips"][0]


async def _add_floating_ip(request: Request, server_id: str, args: Any) -> Response:
    """`addFloatingIp` (up to 2.43): the floating IP onto the server's port (of `fixed_address` when given)."""
    if apikit.version(request) > "2.43":
        raise NotFound("There is no such action: addFloatingIp")
    address = _address(args, "address", True)
    fixed = _address(args, "fixed_address", False)
    inst = await _action_server(request, server_id, "os_compute_api:os-floating-ips:add")
    assert address is not None
    fip = await _floating_by_address(request, address)
    ports = await state(request).network.list_ports(device_id=inst.uuid)
    if not ports:
        raise BadRequest(f"Instance {server_id} has no network ports to associate a floating IP with.")
    chosen = None
    for port in ports:
        ips = [ip["ip_address"] for ip in port.get("fixed_ips") or []]
        if fixed is None and ips:
            chosen, fixed = port, next((ip for ip in ips if ":" not in ip), ips[0])
            break
        if fixed in ips:
            chosen = port
            break
    if chosen is None:
        raise BadRequest("Specified fixed address not assigned to instance")
    try:
        await state(request).network.request("PUT", f"/v2.0/floatingips/{fip['id']}", json={
            "floatingip": {"port_id": chosen["id"], "fixed_ip_address": fixed}})
    except APIError as exc:
        if exc.status >= 500:
            raise
        raise BadRequest(f"Unable to associate floating IP {address} to fixed IP {fixed} for instance "
                         f"{server_id}. Error: {exc}") from None
    await _record_floating(request, inst, chosen["id"], address, add=True)
    return Response(status_code=202)


async def _remove_floating_ip(request: Request, server_id: str, args: Any) -> Response:
    """`removeFloatingIp` (up to 2.43): the floating IP off the server (409 when it is not on it)."""
    if apikit.version(request) > "2.43":
        raise NotFound("There is no such action: removeFloatingIp")
    address = _address(args, "address", True)
    inst = await _action_server(request, server_id, "os_compute_api:os-floating-ips:remove")
    assert address is not None
    fip = await _floating_by_address(request, address)
    ports = {p["id"] for p in await state(request).network.list_ports(device_id=inst.uuid)}
    if fip.get("port_id") not in ports:
        raise Conflict(f"Floating IP {address} is not associated with instance {server_id}.")
    await state(request).network.request("PUT", f"/v2.0/floatingips/{fip['id']}",
                                         json={"floatingip": {"port_id": None}})
    await _record_floating(request, inst, fip["port_id"], address, add=False)
    return Response(status_code=202)


async def _record_floating(request: Request, inst: Any, port_id: str, address: str, *, add: bool) -> None:
    """The server's addresses (its network info) with the floating IP on the port, or without it."""
    info = []
    for vif in inst.network_info or []:
        vif = dict(vif)
        floating = [ip for ip in vif.get("floating_ips") or [] if ip != address]
        if add and vif["id"] == port_id:
            floating.append(address)
        vif["floating_ips"] = floating
        info.append(vif)
    ctx = request_context(request)
    await state(request).servers.update(inst.uuid, ctx, lambda _: None, {"network_info": info})


# the server actions of the network proxies (`POST /servers/{id}/action` dispatches to them)
SERVER_ACTIONS = {"addSecurityGroup": _add_security_group, "removeSecurityGroup": _remove_security_group,
                  "addFloatingIp": _add_floating_ip, "removeFloatingIp": _remove_floating_ip}
