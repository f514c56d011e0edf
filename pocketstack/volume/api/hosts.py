"""`os-hosts` (the volume hosts and what each holds) and `/extensions` (the API extensions Cinder lists)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common.app import json_response
from pocketstack.common.errors import NotFound
from pocketstack.volume.api.common import enforce, isotime, state
from pocketstack.volume.api.services import service_up
from pocketstack.volume.store import services as store


async def list_hosts(request: Request) -> Response:
    """Every block storage service as a host row (`service-status` from its heartbeat)."""
    enforce(request, "volume_extension:hosts")
    zone = request.query_params.get("service")
    rows = await store.list_services(state(request).db, None, None)
    hosts = [{"host_name": svc.host, "service": svc.binary, "zone": svc.availability_zone,
              "service-status": "available" if service_up(svc, request) else "unavailable",
              "service-state": "disabled" if svc.disabled else "enabled",
              "last-update": isotime(svc.updated_at)} for svc in rows]
    return json_response({"hosts": [h for h in hosts if zone is None or h["zone"] == zone]})


async def show_host(request: Request, host: str) -> Response:
    """The volume use on an enabled cinder-volume host: the total, then one row per project (404 otherwise)."""
    enforce(request, "volume_extension:hosts")

    usage = await store.host_usage(state(request).db, host)
    if usage is None:
        raise NotFound(f"Host {host} could not be found.")

    def row(project: str, volumes: int, volume_gb: int, snapshots: int, snapshot_gb: int) -> dict[str, Any]:
        return {"resource": {"host": host, "project": project, "volume_count": str(volumes),
                             "total_volume_gb": str(volume_gb), "snapshot_count": str(snapshots),
                             "total_snapshot_gb": str(snapshot_gb)}}

    total = [sum(u[i] for u in usage) for i in range(1, 5)]
    return json_response({"host": [row("(total)", *total), *(row(*u) for u in usage)]})


# (name, alias, description) of the extensions whose APIs this service has; Cinder lists its loaded ones
_EXTENSIONS = (
    ("AdminActions", "os-admin-actions", "Enable admin actions."),
    ("AvailabilityZones", "os-availability-zone", "Describe Availability Zones."),
    ("Capabilities", "capabilities", "Capabilities support."),
    ("ExtendedSnapshotAttributes", "os-extended-snapshot-attributes", "Extended SnapshotAttributes support."),
    ("Hosts", "os-hosts", "Admin-only host administration."),
    ("QuotaSets", "os-quota-sets", "Quota management support."),
    ("SchedulerStats", "scheduler-stats", "Scheduler stats support."),
    ("Services", "os-services", "Services support."),
    ("SnapshotActions", "os-snapshot-actions", "Enable snapshot manager actions."),
    ("TypesExtraSpecs", "os-types-extra-specs", "Type extra specs support."),
    ("TypesManage", "os-types-manage", "Types manage support."),
    ("UsedLimits", "os-used-limits", "Provide data on limited resources that are being used."),
    ("VolumeActions", "os-volume-actions", "Enable volume actions."),
    ("VolumeHostAttribute", "os-vol-host-attr", "Expose host as an attribute of a volume."),
    ("VolumeImageMetadata", "os-vol-image-meta", "Show image metadata associated with the volume."),
    ("VolumeMigStatusAttribute", "os-vol-mig-status-attr", "Expose migration_status as an attribute of a volume."),
    ("VolumeTenantAttribute", "os-vol-tenant-attr", "Expose the internal project_id as an attribute of a volume."),
    ("VolumeTransfer", "os-volume-transfer", "Volume transfer management support."),
    ("VolumeTypeAccess", "os-volume-type-access", "Volume type access support."),
)


async def list_extensions(request: Request) -> Response:
    return json_response({"extensions": [
        {"name": name, "alias": alias, "description": description, "links": [], "updated": "2013-04-18T00:00:00Z",
         "namespace": f"https://docs.openstack.org/volume/ext/{alias}/api/v1"}
        for name, alias, description in _EXTENSIONS]})
