"""First start with the host data plane (as DevStack does): the external network `public` and, for project
`demo`, a `private` network with a subnet and router `router1` from `private` to `public`.

`public` is a flat network on the physical network `public_physnet` (mapped to a host bridge by
`bridge_mappings`, br-ex by default); the agent makes that bridge and holds the subnet's gateway address on it,
so floating IPs from `public` are reachable from the host. Runs once: nothing is done when `public` exists.
"""

from __future__ import annotations

import ipaddress
import logging

from pocketstack.common.clients.base import ServiceClient
from pocketstack.common.clients.compute_events import TokenSource
from pocketstack.common.context import RequestContext
from pocketstack.network.l3 import NetworkManager
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.network")


async def project_id(settings: Settings, token: str, name: str) -> str | None:
    identity = ServiceClient(settings.base_url("identity"), "identity")
    _, body, _ = await identity.request("GET", "/v3/projects", token=token, params={"name": name})
    projects = body.get("projects", []) if body else []
    return projects[0]["id"] if projects else None


async def create_default_networks(settings: Settings, manager: NetworkManager, token_source: TokenSource) -> bool:
    """Create public, private and router1 unless `public` exists; True when they were created."""
    conf = settings.network
    token = await token_source()
    admin = await project_id(settings, token, "admin")
    ctx = RequestContext(user_name="pocketstack-bootstrap", project_id=admin, roles=["admin"])
    if any(n["name"] == "public" and n["router:external"] for n in await manager.list_networks(ctx)):
        return False
    if conf.public_physnet not in conf.bridge_mappings:
        log.warning("not creating network public: physical network %r has no bridge mapping", conf.public_physnet)
        return False
    public = await manager.create_network(ctx, {
        "name": "public", "project_id": admin, "router:external": True, "shared": False,
        "provider:network_type": "flat", "provider:physical_network": conf.public_physnet})
    cidr = ipaddress.ip_network(conf.public_cidr)
    await manager.create_subnet(ctx, {
        "name": "public-subnet", "network_id": public["id"], "project_id": admin, "ip_version": cidr.version,
        "cidr": str(cidr), "gateway_ip": str(cidr[1]), "enable_dhcp": False})
    demo = await project_id(settings, token, "demo")
    if demo is None:
        return True
    private = await manager.create_network(ctx, {"name": "private", "project_id": demo})
    subnet = await manager.create_subnet(ctx, {
        "name": "private-subnet", "network_id": private["id"], "project_id": demo, "ip_version": 4,
        "cidr": conf.private_cidr})
    router = await manager.create_router(ctx, {"name": "router1", "project_id": demo,
                                               "external_gateway_info": {"network_id": public["id"]}})
    await manager.add_router_interface(ctx, router["id"], {"subnet_id": subnet["id"]})
    log.info("created networks public (%s) and private (%s) with router1", conf.public_cidr, conf.private_cidr)
    return True
