"""Version discovery (`/`, `/v2.0`) and the extensions that are really implemented (`/v2.0/extensions`)."""

from __future__ import annotations

from fastapi import Request, Response

from pocketstack.common.app import json_response
from pocketstack.common.errors import NotFound

UPDATED = "2026-01-01T00:00:00-00:00"
EXTENSIONS: dict[str, tuple[str, str]] = {
    "agent": ("agent", "The agent management extension."),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external application"),
    "external-net": ("Neutron external network", "Adds external network attribute to network resource."),
    "ext-gw-mode": ("Neutron L3 Configurable external gateway mode",
                    "Extension of the router abstraction for specifying whether SNAT should occur on the "
                    "external gateway"),
    "extra_dhcp_opt": ("Neutron Extra DHCP options", "Extra options configuration for DHCP. For example PXE boot "
                       "options to DHCP clients can be specified (e.g. tftp-server, server-ip-address, "
                       "bootfile-name)"),
    "extraroute": ("Neutron Extra Route", "Extra routes configuration for L3 router"),
    "subnet_allocation": ("Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    "service-type": ("Neutron Service Type Management", "API for retrieving service providers for Neutron "
                     "advanced services"),
    "filter-validation": ("Filter parameters validation", "Provides validation on filter parameters."),
    "ip-substring-filtering": ("IP address substring filtering",
                               "Provides IP address substring filtering when listing ports"),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "net-mtu-writable": ("Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
    "network-ip-availability": ("Network IP Availability", "Provides IP availability data for each network and "
                                                           "subnet."),
    "pagination": ("Pagination support", "Extension that indicates that pagination is enabled."),
    "port-security": ("Port Security", "Provides port security"),
    "project-id": ("project_id field enabled", "Extension that indicates that project_id field is enabled."),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical networks"),
    "quotas": ("Quota management support", "Expose functions for quotas management per project"),
    "quota-check-limit": ("Quota engine limit check", "Support for checking the resource usage before applying "
                                                        "a new quota limit"),
    "quota_details": ("Quota details management support", "Expose functions for quotas usage statistics per "
                                                           "project"),
    "router": ("Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks "
                                    "and access to external networks via a NAT gateway."),
    "security-group": ("security-group", "The security groups extension."),
    "sorting": ("Sorting support", "Extension that indicates that sorting is enabled."),
    "standard-attr-description": ("standard-attr-description", "Extension to add descriptions to standard "
                                                               "attributes"),
    "standard-attr-revisions": ("Resource revision numbers", "This extension will display the revision number "
                                                             "of neutron resources."),
    "standard-attr-tag": ("Tag support for resources with standard attribute",
                          "Enables to set tag on resources with standard attribute."),
    "standard-attr-timestamp": ("Resource timestamps", "Adds created_at and updated_at fields to all Neutron "
                                                       "resources that have Neutron standard attributes."),
    "stateful-security-group": ("Stateful security group", "Indicates if the security group is stateful or not"),
}
RESOURCES = ("networks", "subnets", "ports", "security-groups", "security-group-rules", "routers", "floatingips",
             "quotas", "network-ip-availabilities", "agents", "extensions")


def _root(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _extension(alias: str) -> dict[str, object]:
    name, description = EXTENSIONS[alias]
    return {"name": name, "alias": alias, "description": description, "updated": UPDATED, "links": []}


async def versions(request: Request) -> Response:
    return json_response({"versions": [{"id": "v2.0", "status": "CURRENT", "links": [
        {"rel": "self", "href": f"{_root(request)}/v2.0/"}]}]})


async def version(request: Request) -> Response:
    return json_response({"resources": [
        {"name": name.rstrip("s").replace("-", "_"), "collection": name,
         "links": [{"rel": "self", "href": f"{_root(request)}/v2.0/{name}"}]} for name in RESOURCES]})


async def list_extensions() -> Response:
    return json_response({"extensions": [_extension(alias) for alias in sorted(EXTENSIONS)]})


async def list_service_providers() -> Response:
    """The service-type extension's providers of advanced services (load balancers, VPNs, ...): this cloud
    runs none, so the list is empty, as Neutron's without service plugins."""
    return json_response({"service_providers": []})


async def show_extension(alias: str) -> Response:
    if alias not in EXTENSIONS:
        raise NotFound(f"Extension with alias {alias} does not exist", error_type="HTTPNotFound")
    return json_response({"extension": _extension(alias)})
