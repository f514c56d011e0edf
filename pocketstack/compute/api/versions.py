"""Version discovery at `/`, `/v2` and `/v2.1` (with the microversion range), and the legacy `/extensions` list."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common.app import json_response
from pocketstack.common.errors import NotFound
from pocketstack.compute.api.common import MICROVERSIONS, base_url

_MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]


def _v21(request: Request) -> dict[str, Any]:
    return {"id": "v2.1", "status": "CURRENT", "version": MICROVERSIONS.maximum,
            "min_version": MICROVERSIONS.minimum, "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": f"{base_url(request)}/v2.1/"}]}


def _v20(request: Request) -> dict[str, Any]:
    """The v2.0 API as Nova still lists it: v2.1 without microversions, at `/v2`."""
    return {"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "", "updated": "2011-01-21T11:33:21Z",
            "links": [{"rel": "self", "href": f"{base_url(request)}/v2/"}]}


async def versions(request: Request) -> Response:
    return json_response({"versions": [_v20(request), _v21(request)]})


async def version_v21(request: Request) -> Response:
    return json_response({"version": {**_v21(request), "media-types": _MEDIA_TYPES}})


async def version_v20(request: Request) -> Response:
    return json_response({"version": {**_v20(request), "media-types": _MEDIA_TYPES}})


# ----- /extensions: the extension names of the v2.0 API, which v2.1 lists as always loaded -----------------------
_EXTENSIONS = (
    ("AccessIPs", "os-access-ips", "Access IPs support."),
    ("AdminActions", "os-admin-actions", "Enable admin-only server actions."),
    ("AdminPassword", "os-admin-password", "Admin password management support."),
    ("AttachInterfaces", "os-attach-interfaces", "Attach interface support."),
    ("AvailabilityZone", "os-availability-zone", "1. Add availability_zone to the Create Server API."),
    ("BlockDeviceMappingV2Boot", "os-block-device-mapping-v2-boot", "Allow boot with the new BDM data format."),
    ("ConfigDrive", "os-config-drive", "Config Drive Extension."),
    ("ConsoleOutput", "os-console-output", "Console log output support, with tailing ability."),
    ("Consoles", "os-consoles", "Interactive Console support."),
    ("DiskConfig", "os-disk-config", "Disk Management Extension."),
    ("ExtendedAvailabilityZone", "OS-EXT-AZ", "Extended Availability Zone support."),
    ("ExtendedIps", "OS-EXT-IPS", "Adds type parameter to the ip list."),
    ("ExtendedIpsMac", "OS-EXT-IPS-MAC", "Adds mac address parameter to the ip list."),
    ("ExtendedServerAttributes", "OS-EXT-SRV-ATTR", "Extended Server Attributes support."),
    ("ExtendedStatus", "OS-EXT-STS", "Extended Status support."),
    ("ExtendedVolumes", "os-extended-volumes", "Extended Volumes support."),
    ("ExtraSpecs", "os-flavor-extra-specs", "Flavors extra specs support."),
    ("FlavorAccess", "os-flavor-access", "Flavor access support."),
    ("FlavorExtraData", "OS-FLV-EXT-DATA", "Provide additional data for flavors."),
    ("FlavorManage", "os-flavor-manage", "Flavor create/delete API support."),
    ("FloatingIpPools", "os-floating-ip-pools", "Floating IPs support."),
    ("FloatingIps", "os-floating-ips", "Floating IPs support."),
    ("Hosts", "os-hosts", "Admin-only host administration."),
    ("Hypervisors", "os-hypervisors", "Admin-only hypervisor administration."),
    ("ImageMetadata", "image-metadata", "Image Metadata API."),
    ("Images", "images", "Images API."),
    ("InstanceActions", "os-instance-actions", "View a log of actions and events taken on an instance."),
    ("Keypairs", "os-keypairs", "Keypair Support."),
    ("Limits", "limits", "Limits support."),
    ("LockServer", "os-lock-server", "Enable lock/unlock server actions."),
    ("MultipleCreate", "os-multiple-create", "Allow multiple create in the Create Server v2.1 API."),
    ("Networks", "os-networks", "Admin-only Network Management Extension."),
    ("PauseServer", "os-pause-server", "Enable pause/unpause server actions."),
    ("Quotas", "os-quota-sets", "Quotas management support."),
    ("SecurityGroups", "os-security-groups", "Security group support."),
    ("ServerDiagnostics", "os-server-diagnostics", "Allow Admins to view server diagnostics through server id."),
    ("ServerExternalEvents", "os-server-external-events", "Server External Event Triggers."),
    ("ServerGroups", "os-server-groups", "Server group support."),
    ("ServerPassword", "os-server-password", "Server password support."),
    ("ServerUsage", "OS-SRV-USG", "Adds launched_at and terminated_at on Servers."),
    ("Servers", "servers", "Servers."),
    ("Services", "os-services", "Services support."),
    ("ServerStartStop", "os-server-start-stop", "Start/Stop instance compute API support."),
    ("SuspendServer", "os-suspend-server", "Enable suspend/resume server actions."),
    ("TenantNetworks", "os-tenant-networks", "Tenant-based Network Management Extension."),
    ("UserData", "os-user-data", "Add user_data to the Create Server API."),
    ("VolumeAttachmentUpdate", "os-volume-attachment-update", "Support for updating a volume attachment."),
    ("Volumes", "os-volumes", "Volumes support."),
)


def _extension(name: str, alias: str, description: str) -> dict[str, Any]:
    return {"name": name, "alias": alias, "description": description, "links": [],
            "namespace": "http://docs.openstack.org/compute/ext/fake_xml", "updated": "2014-12-03T00:00:00Z"}


async def list_extensions(request: Request) -> Response:
    return json_response({"extensions": [_extension(*entry) for entry in _EXTENSIONS]})


async def show_extension(request: Request, alias: str) -> Response:
    for entry in _EXTENSIONS:
        if entry[1] == alias:
            return json_response({"extension": _extension(*entry)})
    raise NotFound(f"Extension {alias} could not be found.")
