"""`/v3/{project_id}/volumes`: create (empty, from an image, a snapshot or a volume), list, show, update, delete,
metadata and the volume summary."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.volume.api.common import (
    all_projects,
    authorize,
    bool_param,
    check_filters,
    check_metadata,
    collection,
    enforce,
    is_uuid,
    metadata_param,
    paginate,
    sort_spec,
    state,
    text_matches,
    time_filter,
    version,
)
from pocketstack.volume.api.views import volume_detail, volume_summary
from pocketstack.volume.backends.file import IMAGE_FORMATS
from pocketstack.volume.store import volumes as store
from pocketstack.volume.store.lookups import Volume
from pocketstack.volume.store.volumes import NewVolume

log = logging.getLogger("pocketstack.volume.api")


MAX_INT = 2**31 - 1
GiB = 1 << 30
VOLUME_FILTERS = {"name", "status", "metadata", "bootable", "availability_zone", "size", "created_at",
                  "updated_at", "project_id", "user_id", "glance_metadata", "volume_type", "consumes_quota"}
VOLUME_SORT = {"id": "id", "name": "name", "status": "status", "size": "size", "created_at": "created_at",
               "updated_at": "updated_at", "availability_zone": "availability_zone", "bootable": "bootable",
               "user_id": "user_id", "project_id": "project_id"}


class VolumeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str | None = Field(None, max_length=255)
    description: str | None = Field(None, max_length=255)
    display_name: str | None = Field(None, max_length=255)
    display_description: str | None = Field(None, max_length=255)
    size: int | None = Field(None, ge=1, le=MAX_INT)
    availability_zone: str | None = Field(None, max_length=255)
    volume_type: str | None = Field(None, max_length=255)
    metadata: dict[str, Any] | None = None
    snapshot_id: str | None = None
    source_volid: str | None = None
    imageRef: str | None = Field(None, max_length=255)
    image_id: str | None = Field(None, max_length=255)
    consistencygroup_id: str | None = None
    group_id: str | None = None
    backup_id: str | None = None
    multiattach: bool | None = None


class VolumeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=255)
    description: str | None = Field(None, max_length=255)
    display_name: str | None = Field(None, max_length=255)
    display_description: str | None = Field(None, max_length=255)
    metadata: dict[str, Any] | None = None


def _size_of(raw: Any) -> Any:
    """Cinder takes the size as an integer or a string of digits."""
    return int(raw) if isinstance(raw, str) and raw.strip().isdigit() else raw


# ----- create ----------------------------------------------------------------------------------------------------
async def _image_for_volume(request: Request, image_ref: str, size: int) -> dict[str, Any]:
    """The image as the caller sees it (FLOW.md 20-22 from the volume side), checked against the volume size."""
    image_id = image_ref.rstrip("/").rsplit("/", 1)[-1]
    try:
        image = await state(request).image.get_image(image_id) if is_uuid(image_id) else None
    except NotFound:
        image = None
    if image is None:
        raise BadRequest("Invalid image identifier or unable to access requested image.")
    if image.get("status") != "active":
        raise BadRequest(f"Invalid image: Image {image_id} is not active (status {image.get('status')}).")
    if image.get("disk_format") not in IMAGE_FORMATS:
        raise BadRequest(f"Invalid image: Image {image_id} has disk format {image.get('disk_format')}, which cannot "
                         f"become a volume (supported: {', '.join(sorted(IMAGE_FORMATS))}).")
    if (image.get("min_disk") or 0) > size:
        raise BadRequest(f"Invalid input received: Volume size {size}GB cannot be smaller than the image minDisk "
                         f"size {image['min_disk']}GB.")
    for key in ("size", "virtual_size"):
        if (image.get(key) or 0) > size * GiB:
            needed = -(-image[key] // GiB)
            raise BadRequest(f"Invalid input received: Size of specified image {needed}GB is larger than volume "
                             f"size {size}GB.")
    return image


async def _create_body(request: Request) -> VolumeCreate:
    """The checked create body: one source at most, a size unless the source gives it."""
    raw = await json_body(request)
    if not isinstance(raw, dict) or not isinstance(raw.get("volume"), dict):
        raise BadRequest("Missing required element 'volume' in request body.")
    unknown = set(raw) - {"volume", "OS-SCH-HNT:scheduler_hints"}
    if unknown:
        raise BadRequest(f"Invalid input: Additional properties are not allowed ({', '.join(sorted(unknown))}).")
    data = {k: v for k, v in raw["volume"].items() if k != "OS-SCH-HNT:scheduler_hints"}
    if version(request) < "3.53":  # before schema validation Cinder ignored attributes it did not know
        data = {k: v for k, v in data.items() if k in VolumeCreate.model_fields}
    if "size" in data:
        data["size"] = _size_of(data["size"])
    body = VolumeCreate.model_validate(data)
    if body.multiattach:
        raise BadRequest("The deprecated 'multiattach' flag has been removed from the volume creation API. Use a "
                         "multiattach volume type instead.")
    for unsupported in ("consistencygroup_id", "group_id", "backup_id"):
        if getattr(body, unsupported):
            raise BadRequest(f"Invalid input received: {unsupported} is not supported: this cloud has no "
                             f"{unsupported.split('_')[0]} service.")
    image_ref = body.imageRef or body.image_id
    sources = [name for name, value in (("snapshot_id", body.snapshot_id), ("source_volid", body.source_volid),
                                        ("imageRef", image_ref)) if value]
    if len(sources) > 1:
        raise BadRequest(f"Invalid input received: only one of {', '.join(sources)} may be given.")
    if body.size is None and not (body.snapshot_id or body.source_volid):
        raise BadRequest("Invalid input received: Size must be an integer and greater than 0.")
    return body


async def create_volume(request: Request) -> Response:
    ctx = enforce(request, "volume:create")
    body = await _create_body(request)
    image_ref = body.imageRef or body.image_id
    metadata = check_metadata(body.metadata or {})
    image = None
    if image_ref:
        enforce(request, "volume:create_from_image")
        image = await _image_for_volume(request, image_ref, body.size)
    volume_id = str(uuid.uuid4())
    new = NewVolume(id=volume_id, size=body.size, snapshot_id=body.snapshot_id, source_volid=body.source_volid,
                    volume_type=body.volume_type, availability_zone=body.availability_zone,
                    image_id=image["id"] if image else None, metadata=metadata,
                    fields={"name": body.name or body.display_name,
                            "description": body.description or body.display_description})
    db = state(request).db
    host = await store.create_volume(db, state(request).settings, ctx, new)
    if host is not None:
        try:
            await state(request).manager.create_volume(host, volume_id)
        except Exception as exc:
            log.exception("could not hand volume %s to its volume service", volume_id)
            await store.fail_create(db, volume_id, f"the volume service could not be reached ({type(exc).__name__}).")
    created = await store.get_volume(db, volume_id, ctx)
    return json_response({"volume": volume_detail(request, created, ctx, extended=False)}, status=202)


# ----- list, show ------------------------------------------------------------------------------------------------
def _matches(vol: Volume, filters: dict[str, str], request: Request) -> bool:
    for key, wanted in filters.items():
        name, like = key.rstrip("~"), key.endswith("~")
        if name in ("name", "status", "availability_zone", "user_id", "project_id"):
            if not text_matches(getattr(vol, name), wanted, like):
                return False
        elif name == "size":
            if str(vol.size) != wanted:
                return False
        elif name == "bootable":
            if vol.bootable != bool_param(wanted, "bootable"):
                return False
        elif name == "volume_type":
            if wanted not in (vol.volume_type.name, vol.volume_type_id):
                return False
        elif name == "metadata":
            have = {i.key: i.value for i in vol.metadata_items}
            if any(have.get(k) != v for k, v in metadata_param(wanted).items()):
                return False
        elif name == "glance_metadata":
            if any((vol.image_metadata or {}).get(k) != v for k, v in metadata_param(wanted).items()):
                return False
        elif name in ("created_at", "updated_at"):
            if version(request) < "3.60":
                if str(getattr(vol, name)) != wanted:
                    return False
            elif not time_filter(wanted, name)(getattr(vol, name)):
                return False
        elif name == "consumes_quota" and not bool_param(wanted, "consumes_quota"):
            return False
    return True


async def _list_visible(request: Request) -> list[Volume]:
    """The volumes the request may list (its project's, or all with all_tenants), through its filters."""
    ctx = request_context(request)
    filters = check_filters(request, VOLUME_FILTERS)
    every = all_projects(request, ctx)
    if every and not ctx.is_admin:
        filters.pop("project_id", None)
    volumes = await store.list_volumes(state(request).db, None if every else ctx.project_id)
    return [v for v in volumes if _matches(v, filters, request)]


async def _list(request: Request, detail: bool) -> Response:
    ctx = enforce(request, "volume:get_all")
    sort = sort_spec(request, VOLUME_SORT)
    page, total, more = paginate(request, await _list_visible(request), sort)
    views = [volume_detail(request, v, ctx) if detail else volume_summary(request, v) for v in page]
    return json_response(collection(request, "volumes", views, total, more,
                                    "volumes/detail" if detail else "volumes"))


async def list_volumes(request: Request) -> Response:
    return await _list(request, detail=False)


async def list_volumes_detail(request: Request) -> Response:
    return await _list(request, detail=True)


async def volumes_summary(request: Request) -> Response:
    """Count and total size of the visible volumes (3.12), with their distinct metadata (3.36)."""
    enforce(request, "volume:get_all")
    if version(request) < "3.12":
        raise NotFound("The resource could not be found.")
    volumes = await _list_visible(request)
    summary: dict[str, Any] = {"total_count": len(volumes), "total_size": sum(v.size for v in volumes)}
    if version(request) >= "3.36":
        meta: dict[str, list[str]] = {}
        for vol in volumes:
            for item in vol.metadata_items:
                meta.setdefault(item.key, [])
                if item.value not in meta[item.key]:
                    meta[item.key].append(item.value)
        summary["metadata"] = meta
    return json_response({"volume-summary": summary})


async def no_volume_id(request: Request) -> Response:
    """`/volumes/` with the id left out names no volume: 404, as Cinder answers (not the list it redirects to)."""
    raise NotFound("Volume could not be found: the request gave no volume id.")


async def show_volume(request: Request, volume_id: str) -> Response:
    ctx = enforce(request, "volume:get")
    vol = await store.get_volume(state(request).db, volume_id, ctx)
    enforce(request, "volume:get", {"project_id": vol.project_id})
    return json_response({"volume": volume_detail(request, vol, ctx)})


# ----- update, delete ----------------------------------------------------------------------------------------------
async def update_volume(request: Request, volume_id: str) -> Response:
    ctx = enforce(request, "volume:update")
    raw = await json_body(request)
    if not isinstance(raw, dict) or not isinstance(raw.get("volume"), dict):
        raise BadRequest("Missing required element 'volume' in request body.")
    body = VolumeUpdate.model_validate(raw["volume"])
    if version(request) >= "3.53" and not body.model_fields_set:
        raise BadRequest("Invalid input: at least one of name, description, display_name, display_description or "
                         "metadata is required.")
    metadata = check_metadata(body.metadata) if body.metadata is not None else None
    fields = body.model_fields_set
    changes: dict[str, Any] = {}
    if "name" in fields or "display_name" in fields:
        changes["name"] = body.name if "name" in fields else body.display_name
    if "description" in fields or "display_description" in fields:
        changes["description"] = body.description if "description" in fields else body.display_description
    vol = await store.update_volume(state(request).db, ctx, authorize(request, "volume:update"), volume_id, changes,
                                    metadata)
    return json_response({"volume": volume_detail(request, vol, ctx, extended=False)})


async def _start_delete(request: Request, volume_id: str, *, cascade: bool, force: bool) -> None:
    """Mark the volume (and with `cascade` its snapshots) deleting and hand it to its manager."""
    ctx = enforce(request, "volume:delete")

    def check(vol: Volume) -> None:
        enforce(request, "volume:delete", {"project_id": vol.project_id})
        if force:
            enforce(request, "volume:force_delete", {"project_id": vol.project_id})

    host = await store.start_delete(state(request).db, ctx, check, volume_id, cascade=cascade, force=force)
    if host is not None:
        await state(request).manager.delete_volume(host, volume_id)


async def delete_volume(request: Request, volume_id: str) -> Response:
    q = request.query_params
    await _start_delete(request, volume_id, cascade=bool_param(q.get("cascade", "false"), "cascade"),
                       force=bool_param(q.get("force", "false"), "force"))
    return Response(status_code=202)


# ----- metadata ----------------------------------------------------------------------------------------------------
async def _metadata_body(request: Request, key: str) -> dict[str, str]:
    raw = await json_body(request)
    if not isinstance(raw, dict) or key not in raw:
        raise BadRequest(f"Malformed request body: '{key}' is required.")
    return check_metadata(raw[key])


async def _read_metadata(request: Request, volume_id: str) -> dict[str, str]:
    action = "volume:get_volume_metadata"
    return await store.get_metadata(state(request).db, enforce(request, action), authorize(request, action),
                                    volume_id)


async def _write_metadata(request: Request, volume_id: str, action: str, metadata: dict[str, str],
                          replace: bool) -> dict[str, str]:
    return await store.set_metadata(state(request).db, enforce(request, action), authorize(request, action),
                                    volume_id, metadata, replace=replace)


async def get_metadata(request: Request, volume_id: str) -> Response:
    return json_response({"metadata": await _read_metadata(request, volume_id)})


async def create_metadata(request: Request, volume_id: str) -> Response:
    metadata = await _metadata_body(request, "metadata")
    result = await _write_metadata(request, volume_id, "volume:create_volume_metadata", metadata, replace=False)
    return json_response({"metadata": result})


async def replace_metadata(request: Request, volume_id: str) -> Response:
    metadata = await _metadata_body(request, "metadata")
    result = await _write_metadata(request, volume_id, "volume:update_volume_metadata", metadata, replace=True)
    return json_response({"metadata": result})


async def get_metadata_item(request: Request, volume_id: str, key: str) -> Response:
    metadata = await _read_metadata(request, volume_id)
    if key not in metadata:
        raise NotFound(f"Volume {volume_id} has no metadata with key {key}.")
    return json_response({"meta": {key: metadata[key]}})


async def set_metadata_item(request: Request, volume_id: str, key: str) -> Response:
    meta = await _metadata_body(request, "meta")
    if len(meta) != 1 or key not in meta:
        raise BadRequest("Request body and URI mismatch: the body must hold exactly the key of the URI.")
    await _write_metadata(request, volume_id, "volume:update_volume_metadata", meta, replace=False)
    return json_response({"meta": meta})


async def delete_metadata_item(request: Request, volume_id: str, key: str) -> Response:
    action = "volume:delete_volume_metadata"
    await store.delete_metadata(state(request).db, enforce(request, action), authorize(request, action), volume_id,
                                key)
    return Response(status_code=200)
