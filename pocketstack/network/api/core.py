"""Networks, subnets and ports (`/v2.0/networks`, `/v2.0/subnets`, `/v2.0/ports`)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Request
from pydantic import Field

from pocketstack.network.api.common import Body, Resource, context, manager, pushdown

Name = Field("", max_length=255)
NetworkType = Literal["flat", "vlan", "vxlan", "local"]

NETWORK_ATTRS = {
    "id", "name", "description", "project_id", "tenant_id", "created_at", "updated_at", "revision_number",
    "tags", "admin_state_up", "status", "shared", "router:external", "mtu", "port_security_enabled",
    "provider:network_type", "provider:physical_network", "provider:segmentation_id", "subnets",
    "availability_zone_hints", "availability_zones", "ipv4_address_scope", "ipv6_address_scope", "l2_adjacency",
}
SUBNET_ATTRS = {
    "id", "name", "description", "project_id", "tenant_id", "created_at", "updated_at", "revision_number", "tags",
    "network_id", "ip_version", "cidr", "gateway_ip", "allocation_pools", "dns_nameservers", "host_routes",
    "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "service_types", "segment_id",
    "dns_publish_fixed_ip",
}
PORT_ATTRS = {
    "id", "name", "description", "project_id", "tenant_id", "created_at", "updated_at", "revision_number", "tags",
    "network_id", "admin_state_up", "mac_address", "fixed_ips", "device_id", "device_owner", "status",
    "binding:host_id", "binding:vif_type", "binding:vif_details", "binding:profile", "binding:vnic_type",
    "port_security_enabled", "allowed_address_pairs", "security_groups", "ip_allocation", "extra_dhcp_opts",
}
VnicType = Literal["normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder",
                   "smart-nic", "remote-managed", "vdpa"]


class Owned(Body):
    project_id: str | None = Field(None, max_length=64)
    tenant_id: str | None = Field(None, max_length=64)


class NetworkUpdate(Body):
    name: str = Name
    description: str = Name
    admin_state_up: bool = False
    shared: bool = False
    router_external: bool = Field(False, alias="router:external")
    mtu: int = 0
    port_security_enabled: bool = False
    availability_zone_hints: list[str] = []
    provider_network_type: NetworkType = Field("local", alias="provider:network_type")
    provider_physical_network: str | None = Field(None, alias="provider:physical_network", max_length=64)
    provider_segmentation_id: int | None = Field(None, alias="provider:segmentation_id")


class NetworkCreate(NetworkUpdate, Owned):
    pass


class Pool(Body):
    start: str
    end: str


class Route(Body):
    destination: str
    nexthop: str


class SubnetUpdate(Body):
    name: str = Name
    description: str = Name
    gateway_ip: str | None = None
    allocation_pools: list[Pool] = []
    dns_nameservers: list[str] = []
    host_routes: list[Route] = []
    enable_dhcp: bool = False


class SubnetCreate(SubnetUpdate, Owned):
    network_id: str
    ip_version: Literal[4, 6] = 4
    cidr: str | None = None
    subnetpool_id: str | None = None
    prefixlen: int | None = Field(None, ge=0, le=128)
    ipv6_ra_mode: Literal["slaac", "dhcpv6-stateful", "dhcpv6-stateless"] | None = None
    ipv6_address_mode: Literal["slaac", "dhcpv6-stateful", "dhcpv6-stateless"] | None = None


class FixedIP(Body):
    subnet_id: str | None = None
    ip_address: str | None = None


class AddressPair(Body):
    ip_address: str
    mac_address: str | None = None


class ExtraDhcpOpt(Body):
    """A DHCP option for this port (a dnsmasq option name or number); `opt_value` null removes it (update)."""

    opt_name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")
    opt_value: str | None = Field(None, min_length=1, max_length=255, pattern=r"^[^\n\r]*$")
    ip_version: Literal[4, 6] = 4


class PortUpdate(Body):
    name: str = Name
    description: str = Name
    admin_state_up: bool = False
    mac_address: str = ""
    fixed_ips: list[FixedIP] = []
    device_id: str = Name
    device_owner: str = Name
    binding_host_id: str | None = Field(None, alias="binding:host_id", max_length=255)
    binding_profile: dict[str, Any] | None = Field(None, alias="binding:profile")
    binding_vnic_type: VnicType = Field("normal", alias="binding:vnic_type")
    security_groups: list[str] = []
    allowed_address_pairs: list[AddressPair] = []
    port_security_enabled: bool = False
    extra_dhcp_opts: list[ExtraDhcpOpt] = []


class PortCreate(PortUpdate, Owned):
    network_id: str


SUBNETPOOL_ATTRS = {
    "id", "name", "description", "project_id", "tenant_id", "created_at", "updated_at", "revision_number", "tags",
    "ip_version", "prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen", "shared", "is_default",
    "default_quota", "address_scope_id",
}
PrefixLen = Field(None, ge=0, le=128)


class SubnetPoolUpdate(Body):
    name: str = Name
    description: str = Name
    prefixes: list[str] = Field(None, min_length=1)
    default_prefixlen: int = PrefixLen
    min_prefixlen: int = PrefixLen
    max_prefixlen: int = PrefixLen
    is_default: bool = False
    default_quota: int | None = Field(None, ge=0)


class SubnetPoolCreate(SubnetPoolUpdate, Owned):
    prefixes: list[str] = Field(min_length=1)
    shared: bool = False


async def _list_ports(request: Request) -> list[dict[str, Any]]:
    sql = pushdown(request, {"network_id": "network_id", "device_id": "device_id", "id": "id"})
    return await manager(request).list_ports(context(request), sql)


NETWORKS = Resource(
    "/v2.0/networks", kind="network", collection="networks", attributes=NETWORK_ATTRS, create=NetworkCreate,
    update=NetworkUpdate)
SUBNETS = Resource(
    "/v2.0/subnets", kind="subnet", collection="subnets", attributes=SUBNET_ATTRS, create=SubnetCreate,
    update=SubnetUpdate)
SUBNETPOOLS = Resource(
    "/v2.0/subnetpools", kind="subnetpool", collection="subnetpools", attributes=SUBNETPOOL_ATTRS,
    create=SubnetPoolCreate, update=SubnetPoolUpdate)
PORTS = Resource(
    "/v2.0/ports", kind="port", collection="ports", attributes=PORT_ATTRS, create=PortCreate, update=PortUpdate,
    list_items=_list_ports)
