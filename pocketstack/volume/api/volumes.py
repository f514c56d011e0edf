"""`/v3/{project_id}/volumes`: create (empty, from an image, a snapshot or a volume), list, show, update, delete,
metadata and the volume summary."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.app import json_body, json_response
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.volume import messages, quotas, scheduler
from pocketstack.volume import models as m
from pocketstack.volume import states as st
from pocketstack.volume.api.common import (
    all_projects,
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
from pocketstack.volume.store.lookups import (
    default_type,
    is_multiattach,
    resolve_type,
    visible_snapshot,
    visible_volume,
)

log = logging.getLogger("pocketstack.volume.api")


MAX_INT = 2**31 - 1
GiB = 1 << 30
DELETABLE = (st.AVAILABLE, st.ERROR, st.ERROR_EXTENDING, "error_restoring", "error_managing")
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
    settings = state(request).settings
    volume_id = str(uuid.uuid4())

    def write(session: Session) -> str | None:
        """Insert the volume (creating, on its backend), or in error when no backend can hold it."""
        size, host, source_type, zone = body.size, None, None, body.availability_zone
        if body.snapshot_id:
            snap = visible_snapshot(session, body.snapshot_id, ctx)
            st.require("create a volume from it", "snapshot", snap.id, snap.status, (st.AVAILABLE,))
            source = session.get(m.Volume, snap.volume_id)
            size = size or snap.volume_size
            if size < snap.volume_size:
                raise BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be smaller than the "
                                 f"snapshot size {snap.volume_size}GB. They must be >= original snapshot size.")
            host, source_type = snap.host, session.get(m.VolumeType, snap.volume_type_id)
            zone = zone or source.availability_zone
        elif body.source_volid:
            source = visible_volume(session, body.source_volid, ctx)
            st.require("clone it", "volume", source.id, source.status, (st.AVAILABLE,))
            size = size or source.size
            if size < source.size:
                raise BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be smaller than the source "
                                 f"volume size {source.size}GB. They must be >= original volume size.")
            host, source_type, zone = source.host, source.volume_type, zone or source.availability_zone
        vtype = (resolve_type(session, body.volume_type, ctx, settings) if body.volume_type else
                 source_type or default_type(session, settings, ctx.project_id))
        zones = {settings.volume.availability_zone, *session.scalars(select(m.Service.availability_zone).where(
            m.Service.binary == scheduler.VOLUME_BINARY)).all()}
        zone = zone or settings.volume.availability_zone
        if zone not in zones:
            raise BadRequest(f"Invalid input received: Availability zone '{zone}' is invalid.")
        quotas.check(session, settings, ctx.project_id, volumes=1, gigabytes=size, volume_size=size)
        failure = None
        try:
            host = scheduler.pick(session, settings, size, availability_zone=zone, host=host)
        except scheduler.NoValidBackend as exc:
            host, failure = None, str(exc)
        now = utcnow()
        session.add(m.Volume(
            id=volume_id, project_id=ctx.project_id, user_id=ctx.user_id, name=body.name or body.display_name,
            description=body.description or body.display_description, size=size,
            status=st.ERROR if failure else st.CREATING, attach_status=st.DETACHED, availability_zone=zone,
            volume_type_id=vtype.id, snapshot_id=body.snapshot_id, source_volid=body.source_volid,
            image_id=image["id"] if image else None, bootable=False, multiattach=is_multiattach(vtype), host=host,
            image_metadata={}, admin_metadata={}, created_at=now, updated_at=now))
        for key, value in metadata.items():
            session.add(m.VolumeMetadata(volume_id=volume_id, key=key, value=value))
        if failure:
            messages.add(session, ctx.project_id, "VOLUME", volume_id, messages.SCHEDULE_ALLOCATE_VOLUME, failure)
        return host

    db = state(request).db
    host = await db.run(write, write=True)
    if host is not None:
        try:
            await state(request).manager.create_volume(host, volume_id)
        except Exception as exc:
            log.exception("could not hand volume %s to its volume service", volume_id)
            reason = f"the volume service could not be reached ({type(exc).__name__})."
            await db.run(lambda s: _fail(s, volume_id, reason), write=True)
    volume = await db.run(lambda s: s.get(m.Volume, volume_id), write=False)
    return json_response({"volume": volume_detail(request, volume, ctx)}, status=202)


def _fail(session: Session, volume_id: str, reason: str) -> None:
    volume = session.get(m.Volume, volume_id)
    volume.status = st.ERROR
    messages.add(session, volume.project_id, "VOLUME", volume_id, messages.SCHEDULE_ALLOCATE_VOLUME, reason)


# ----- list, show ------------------------------------------------------------------------------------------------
def _matches(vol: m.Volume, filters: dict[str, str], request: Request) -> bool:
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


def list_visible(request: Request, session: Session, ctx: RequestContext) -> list[m.Volume]:
    filters = check_filters(request, VOLUME_FILTERS)
    query = select(m.Volume)
    if not all_projects(request, ctx):
        query = query.where(m.Volume.project_id == ctx.project_id)
    elif not ctx.is_admin:
        filters.pop("project_id", None)
    return [v for v in session.scalars(query).all() if _matches(v, filters, request)]


async def _list(request: Request, detail: bool) -> Response:
    ctx = enforce(request, "volume:get_all")
    sort = sort_spec(request, VOLUME_SORT)

    def read(session: Session) -> dict[str, Any]:
        page, total, more = paginate(request, list_visible(request, session, ctx), sort)
        views = [volume_detail(request, v, ctx) if detail else volume_summary(request, v) for v in page]
        return collection(request, "volumes", views, total, more, "volumes/detail" if detail else "volumes")

    return json_response(await state(request).db.run(read, write=False))


async def list_volumes(request: Request) -> Response:
    return await _list(request, detail=False)


async def list_volumes_detail(request: Request) -> Response:
    return await _list(request, detail=True)


async def volumes_summary(request: Request) -> Response:
    """Count and total size of the visible volumes (3.12), with their distinct metadata (3.36)."""
    ctx = enforce(request, "volume:get_all")
    if version(request) < "3.12":
        raise NotFound("The resource could not be found.")

    def read(session: Session) -> dict[str, Any]:
        volumes = list_visible(request, session, ctx)
        summary: dict[str, Any] = {"total_count": len(volumes), "total_size": sum(v.size for v in volumes)}
        if version(request) >= "3.36":
            meta: dict[str, list[str]] = {}
            for vol in volumes:
                for item in vol.metadata_items:
                    meta.setdefault(item.key, [])
                    if item.value not in meta[item.key]:
                        meta[item.key].append(item.value)
            summary["metadata"] = meta
        return {"volume-summary": summary}

    return json_response(await state(request).db.run(read, write=False))


async def show_volume(request: Request, volume_id: str) -> Response:
    ctx = enforce(request, "volume:get")

    def read(session: Session) -> dict[str, Any]:
        vol = visible_volume(session, volume_id, ctx)
        enforce(request, "volume:get", {"project_id": vol.project_id})
        return {"volume": volume_detail(request, vol, ctx)}

    return json_response(await state(request).db.run(read, write=False))


# ----- update, delete ----------------------------------------------------------------------------------------------
def _set_metadata(session: Session, vol: m.Volume, metadata: dict[str, str], *, replace: bool) -> dict[str, str]:
    have = {i.key: i for i in vol.metadata_items}
    for key, item in have.items():
        if replace and key not in metadata:
            session.delete(item)
    for key, value in metadata.items():
        if key in have:
            have[key].value = value
        else:
            session.add(m.VolumeMetadata(volume_id=vol.id, key=key, value=value))
    vol.updated_at = utcnow()
    session.flush()
    session.expire(vol, ["metadata_items"])
    return {i.key: i.value for i in vol.metadata_items}


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

    def write(session: Session) -> dict[str, Any]:
        vol = visible_volume(session, volume_id, ctx)
        enforce(request, "volume:update", {"project_id": vol.project_id})
        fields = body.model_fields_set
        if "name" in fields or "display_name" in fields:
            vol.name = body.name if "name" in fields else body.display_name
        if "description" in fields or "display_description" in fields:
            vol.description = body.description if "description" in fields else body.display_description
        if metadata is not None:
            _set_metadata(session, vol, metadata, replace=True)
        vol.updated_at = utcnow()
        session.flush()
        return {"volume": volume_detail(request, vol, ctx)}

    return json_response(await state(request).db.run(write, write=True))


async def _start_delete(request: Request, volume_id: str, *, cascade: bool, force: bool) -> None:
    """Mark the volume (and with `cascade` its snapshots) deleting and hand it to its manager."""
    ctx = enforce(request, "volume:delete")

    def write(session: Session) -> str | None:
        vol = visible_volume(session, volume_id, ctx)
        enforce(request, "volume:delete", {"project_id": vol.project_id})
        if force:
            enforce(request, "volume:force_delete", {"project_id": vol.project_id})
        snapshots = session.scalars(select(m.Snapshot).where(m.Snapshot.volume_id == vol.id)).all()
        blocked = (vol.attach_status == st.ATTACHED or vol.attachments or (not force and vol.status not in DELETABLE)
                   or vol.status == st.DELETING or (snapshots and not cascade)
                   or any(s.status not in (st.AVAILABLE, st.ERROR) for s in snapshots))
        if blocked:
            raise BadRequest("Invalid volume: Volume status must be available or error or error_restoring or "
                             "error_extending or error_managing and must not be migrating, attached, belong to a "
                             "group, have snapshots, awaiting a transfer, or be disassociated from snapshots after "
                             f"volume transfer (volume {vol.id} is {vol.status} with {len(vol.attachments)} "
                             f"attachment(s) and {len(snapshots)} snapshot(s)).")
        if vol.host is None:  # never reached a backend: nothing to remove there
            for snap in snapshots:
                session.delete(snap)
            session.delete(vol)
            return None
        vol.previous_status, vol.status, vol.updated_at = vol.status, st.DELETING, utcnow()
        for snap in snapshots:
            snap.status = st.DELETING
        return vol.host

    host = await state(request).db.run(write, write=True)
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


async def get_metadata(request: Request, volume_id: str) -> Response:
    ctx = enforce(request, "volume:get_volume_metadata")

    def read(session: Session) -> dict[str, Any]:
        vol = visible_volume(session, volume_id, ctx)
        enforce(request, "volume:get_volume_metadata", {"project_id": vol.project_id})
        return {"metadata": {i.key: i.value for i in vol.metadata_items}}

    return json_response(await state(request).db.run(read, write=False))


async def _write_metadata(request: Request, volume_id: str, action: str, metadata: dict[str, str],
                          replace: bool) -> dict[str, str]:
    ctx = enforce(request, action)

    def write(session: Session) -> dict[str, str]:
        vol = visible_volume(session, volume_id, ctx)
        enforce(request, action, {"project_id": vol.project_id})
        if vol.status in (st.DELETING, st.ERROR_DELETING):
            raise BadRequest(f"Invalid volume: Volume {vol.id} is being deleted.")
        return _set_metadata(session, vol, metadata, replace=replace)

    return await state(request).db.run(write, write=True)


async def create_metadata(request: Request, volume_id: str) -> Response:
    metadata = await _metadata_body(request, "metadata")
    result = await _write_metadata(request, volume_id, "volume:create_volume_metadata", metadata, replace=False)
    return json_response({"metadata": result})


async def replace_metadata(request: Request, volume_id: str) -> Response:
    metadata = await _metadata_body(request, "metadata")
    result = await _write_metadata(request, volume_id, "volume:update_volume_metadata", metadata, replace=True)
    return json_response({"metadata": result})


async def get_metadata_item(request: Request, volume_id: str, key: str) -> Response:
    ctx = enforce(request, "volume:get_volume_metadata")

    def read(session: Session) -> dict[str, Any]:
        vol = visible_volume(session, volume_id, ctx)
        enforce(request, "volume:get_volume_metadata", {"project_id": vol.project_id})
        item = next((i for i in vol.metadata_items if i.key == key), None)
        if item is None:
            raise NotFound(f"Volume {volume_id} has no metadata with key {key}.")
        return {"meta": {key: item.value}}

    return json_response(await state(request).db.run(read, write=False))


async def set_metadata_item(request: Request, volume_id: str, key: str) -> Response:
    meta = await _metadata_body(request, "meta")
    if len(meta) != 1 or key not in meta:
        raise BadRequest("Request body and URI mismatch: the body must hold exactly the key of the URI.")
    await _write_metadata(request, volume_id, "volume:update_volume_metadata", meta, replace=False)
    return json_response({"meta": meta})


async def delete_metadata_item(request: Request, volume_id: str, key: str) -> Response:
    ctx = enforce(request, "volume:delete_volume_metadata")

    def write(session: Session) -> None:
        vol = visible_volume(session, volume_id, ctx)
        enforce(request, "volume:delete_volume_metadata", {"project_id": vol.project_id})
        item = next((i for i in vol.metadata_items if i.key == key), None)
        if item is None:
            raise NotFound(f"Volume {volume_id} has no metadata with key {key}.")
        session.delete(item)
        vol.updated_at = utcnow()

    await state(request).db.run(write, write=True)
    return Response(status_code=200)

