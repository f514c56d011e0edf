"""Response bodies of volumes, snapshots, attachments and types, per microversion, as Cinder's view builders."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from pocketstack.common.context import RequestContext
from pocketstack.volume import states as st
from pocketstack.volume.api.common import isotime, links, state, version
from pocketstack.volume.store.lookups import Snapshot, Volume, VolumeAttachment, VolumeType

# Extra specs every user may see (Cinder's USER_VISIBLE_EXTRA_SPECS); admins see all of them.
USER_VISIBLE_EXTRA_SPECS = ("RESKEY:availability_zones", "multiattach", "replication_enabled")


def _allowed(request: Request, ctx: RequestContext, action: str, project_id: str | None) -> bool:
    return state(request).policy.check(action, ctx, {"project_id": project_id})


def volume_attachments(vol: Volume, ctx: RequestContext) -> list[dict[str, Any]]:
    """The attached attachments of a volume, as the volume body lists them."""
    result = []
    for att in vol.attachments:
        if att.attach_status != st.ATTACHED:
            continue
        result.append({"id": vol.id, "attachment_id": att.id, "volume_id": vol.id, "server_id": att.instance_uuid,
                       "host_name": att.attached_host if ctx.is_admin or "service" in ctx.roles else None,
                       "device": att.mountpoint, "attached_at": isotime(att.attach_time)})
    return result


def volume_summary(request: Request, vol: Volume) -> dict[str, Any]:
    return {"id": vol.id, "name": vol.name, "links": links(request, "volumes", vol.id)}


def _visible_admin_metadata(vol: Any) -> dict[str, str]:
    """The admin metadata Cinder shows among the metadata: the readonly flag and the attach mode."""
    return {k: v for k, v in (vol.admin_metadata or {}).items() if k in ("readonly", "attached_mode")}


def volume_detail(request: Request, vol: Volume, ctx: RequestContext, extended: bool = True) -> dict[str, Any]:
    """A volume as Cinder shows it; `extended=False` for the create and update answers, which Cinder gives
    without the attributes its extensions add to show and list (tenant, host, migration, image metadata)."""
    ver = version(request)
    body: dict[str, Any] = {
        "id": vol.id, "status": vol.status, "size": vol.size, "availability_zone": vol.availability_zone,
        "created_at": isotime(vol.created_at), "updated_at": isotime(vol.updated_at), "name": vol.name,
        "description": vol.description, "volume_type": vol.volume_type.name, "snapshot_id": vol.snapshot_id,
        "source_volid": vol.source_volid,
        "metadata": {**{i.key: i.value for i in vol.metadata_items}, **_visible_admin_metadata(vol)},
        "links": links(request, "volumes", vol.id), "user_id": vol.user_id,
        "bootable": str(vol.bootable).lower(), "encrypted": False, "replication_status": None,
        "consistencygroup_id": None, "multiattach": vol.multiattach,
        "attachments": volume_attachments(vol, ctx),
    }
    if ctx.is_admin:
        body["migration_status"] = vol.migration_status
    if extended:
        _extension_attributes(request, ctx, vol, body)
    if ver >= "3.13":
        body["group_id"] = None
    if ver >= "3.21" and ctx.is_admin:
        body["provider_id"] = None
    if ver >= "3.48":
        body["shared_targets"] = False
        body["service_uuid"] = None
    if ver >= "3.61" and ctx.is_admin:
        body["cluster_name"] = None
    if ver >= "3.63":
        body["volume_type_id"] = vol.volume_type_id
    if ver >= "3.65":
        body["consumes_quota"] = True
    return body


def _extension_attributes(request: Request, ctx: RequestContext, vol: Volume, body: dict[str, Any]) -> None:
    if _allowed(request, ctx, "volume_extension:volume_tenant_attribute", vol.project_id):
        body["os-vol-tenant-attr:tenant_id"] = vol.project_id
    if _allowed(request, ctx, "volume_extension:volume_host_attribute", vol.project_id):
        body["os-vol-host-attr:host"] = vol.host
    if _allowed(request, ctx, "volume_extension:volume_mig_status_attribute", vol.project_id):
        body["os-vol-mig-status-attr:migstat"] = vol.migration_status
        body["os-vol-mig-status-attr:name_id"] = None
        body["migration_status"] = vol.migration_status
    if vol.image_metadata and _allowed(request, ctx, "volume_extension:volume_image_metadata:show", vol.project_id):
        body["volume_image_metadata"] = dict(vol.image_metadata)


def snapshot_detail(request: Request, snap: Snapshot, ctx: RequestContext, extended: bool = True
                    ) -> dict[str, Any]:
    """A snapshot; `extended=False` for the create and update answers, without the extended attributes."""
    ver = version(request)
    body: dict[str, Any] = {
        "id": snap.id, "created_at": isotime(snap.created_at), "updated_at": isotime(snap.updated_at),
        "name": snap.name, "description": snap.description, "volume_id": snap.volume_id, "status": snap.status,
        "size": snap.volume_size, "metadata": {i.key: i.value for i in snap.metadata_items},
    }
    if extended and _allowed(request, ctx, "volume_extension:extended_snapshot_attributes", snap.project_id):
        body["os-extended-snapshot-attributes:project_id"] = snap.project_id
        body["os-extended-snapshot-attributes:progress"] = snap.progress
    if ver >= "3.14":
        body["group_snapshot_id"] = None
    if ver >= "3.41":
        body["user_id"] = snap.user_id
    if ver >= "3.65":
        body["consumes_quota"] = True
    return body


def attachment_summary(att: VolumeAttachment) -> dict[str, Any]:
    return {"id": att.id, "status": att.attach_status, "instance": att.instance_uuid, "volume_id": att.volume_id}


def attachment_detail(att: VolumeAttachment) -> dict[str, Any]:
    return {**attachment_summary(att), "attached_at": isotime(att.attach_time) or "",
            "detached_at": isotime(att.detach_time) or "", "attach_mode": att.attach_mode,
            "connection_info": att.connection_info or {}}


def type_view(request: Request, vtype: VolumeType, ctx: RequestContext, answer: str = "show") -> dict[str, Any]:
    """A volume type; `answer` "create" leaves out qos_specs_id and "update" gives only the type's own fields,
    as Cinder's create and update answers do."""
    specs = {s.key: s.value for s in vtype.extra_specs}
    if not _allowed(request, ctx, "volume_extension:access_types_extra_specs", ctx.project_id):
        specs = {}
    elif not _allowed(request, ctx, "volume_extension:types_extra_specs:read_sensitive", ctx.project_id):
        specs = {k: v for k, v in specs.items() if k in USER_VISIBLE_EXTRA_SPECS}
    body: dict[str, Any] = {"id": vtype.id, "name": vtype.name, "description": vtype.description,
                            "is_public": vtype.is_public, "os-volume-type-access:is_public": vtype.is_public,
                            "extra_specs": specs}
    if answer == "update":
        return {k: body[k] for k in ("id", "name", "description", "is_public", "extra_specs")}
    if ctx.is_admin and answer == "show":
        body["qos_specs_id"] = vtype.qos_specs_id
    return body
