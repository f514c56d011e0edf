"""`/v3/{project_id}/snapshots`: create, list, show, update, delete, metadata and the admin actions."""

from __future__ import annotations

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
from pocketstack.volume import models as m
from pocketstack.volume import quotas, scheduler
from pocketstack.volume import states as st
from pocketstack.volume.api.common import (
    all_projects,
    body_of,
    bool_param,
    check_filters,
    check_metadata,
    collection,
    enforce,
    metadata_param,
    paginate,
    sort_spec,
    state,
    text_matches,
)
from pocketstack.volume.store.lookups import visible_snapshot, visible_volume
from pocketstack.volume.api.views import snapshot_detail

SNAPSHOT_FILTERS = {"name", "status", "volume_id", "project_id", "metadata", "consumes_quota"}
SNAPSHOT_SORT = {"id": "id", "name": "name", "status": "status", "created_at": "created_at",
                 "updated_at": "updated_at", "volume_id": "volume_id", "size": "volume_size"}


class SnapshotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    volume_id: str
    name: str | None = Field(None, max_length=255)
    description: str | None = Field(None, max_length=255)
    display_name: str | None = Field(None, max_length=255)
    display_description: str | None = Field(None, max_length=255)
    force: bool | str | None = None
    metadata: dict[str, Any] | None = None


class SnapshotUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=255)
    description: str | None = Field(None, max_length=255)
    display_name: str | None = Field(None, max_length=255)
    display_description: str | None = Field(None, max_length=255)


async def create_snapshot(request: Request) -> Response:
    ctx = enforce(request, "volume:create_snapshot")
    body = await body_of(request, "snapshot", SnapshotCreate)
    force = bool_param(body.force, "force") if body.force is not None else False
    metadata = check_metadata(body.metadata or {})
    settings = state(request).settings
    snapshot_id = str(uuid.uuid4())

    def write(session: Session) -> str:
        vol = visible_volume(session, body.volume_id, ctx)
        enforce(request, "volume:create_snapshot", {"project_id": vol.project_id})
        if vol.status == st.IN_USE:
            raise BadRequest(f"Invalid volume: Volume {vol.id} is in-use" + (
                "; the file backend snapshots detached volumes only." if force else
                ": snapshotting an in-use volume needs force, and the file backend snapshots detached volumes "
                "only."))
        st.require("snapshot", "volume", vol.id, vol.status, (st.AVAILABLE,))
        quotas.check(session, settings, ctx.project_id, snapshots=1, gigabytes=vol.size)
        pool = next((p for p in scheduler.pools(session, settings, lock=True) if p.host == vol.host), None)
        if pool is None or pool.free_gb < vol.size:
            raise BadRequest(f"Invalid input received: the backend of volume {vol.id} has not the {vol.size} GB "
                             "free that a snapshot of it may grow to.")
        now = utcnow()
        session.add(m.Snapshot(id=snapshot_id, volume_id=vol.id, project_id=ctx.project_id, user_id=ctx.user_id,
                               name=body.name or body.display_name,
                               description=body.description or body.display_description, status=st.CREATING,
                               progress="0%", volume_size=vol.size, volume_type_id=vol.volume_type_id,
                               host=vol.host, created_at=now, updated_at=now))
        for key, value in metadata.items():
            session.add(m.SnapshotMetadata(snapshot_id=snapshot_id, key=key, value=value))
        return vol.host

    db = state(request).db
    host = await db.run(write, write=True)
    await state(request).manager.create_snapshot(host, snapshot_id)
    snap = await db.run(lambda s: s.get(m.Snapshot, snapshot_id), write=False)
    return json_response({"snapshot": snapshot_detail(request, snap, ctx)}, status=202)


def _matches(snap: m.Snapshot, filters: dict[str, str]) -> bool:
    for key, wanted in filters.items():
        name, like = key.rstrip("~"), key.endswith("~")
        if name in ("name", "status", "volume_id", "project_id"):
            if not text_matches(getattr(snap, name), wanted, like):
                return False
        elif name == "metadata":
            have = {i.key: i.value for i in snap.metadata_items}
            if any(have.get(k) != v for k, v in metadata_param(wanted).items()):
                return False
        elif name == "consumes_quota" and not bool_param(wanted, "consumes_quota"):
            return False
    return True


def _visible(request: Request, session: Session, ctx: RequestContext) -> list[m.Snapshot]:
    filters = check_filters(request, SNAPSHOT_FILTERS)
    query = select(m.Snapshot)
    if not all_projects(request, ctx):
        query = query.where(m.Snapshot.project_id == ctx.project_id)
    return [s for s in session.scalars(query).all() if _matches(s, filters)]


async def _list(request: Request, detail: bool) -> Response:
    ctx = enforce(request, "volume:get_all_snapshots")
    sort = sort_spec(request, SNAPSHOT_SORT)

    def read(session: Session) -> dict[str, Any]:
        page, total, more = paginate(request, _visible(request, session, ctx), sort)
        views = [snapshot_detail(request, s, ctx) for s in page]
        if not detail:  # the summary drops the extended attributes
            views = [{k: v for k, v in view.items() if not k.startswith("os-extended")} for view in views]
        return collection(request, "snapshots", views, total, more, "snapshots/detail" if detail else "snapshots")

    return json_response(await state(request).db.run(read, write=False))


async def list_snapshots(request: Request) -> Response:
    return await _list(request, detail=False)


async def list_snapshots_detail(request: Request) -> Response:
    return await _list(request, detail=True)


async def show_snapshot(request: Request, snapshot_id: str) -> Response:
    ctx = enforce(request, "volume:get_snapshot")

    def read(session: Session) -> dict[str, Any]:
        snap = visible_snapshot(session, snapshot_id, ctx)
        enforce(request, "volume:get_snapshot", {"project_id": snap.project_id})
        return {"snapshot": snapshot_detail(request, snap, ctx)}

    return json_response(await state(request).db.run(read, write=False))


async def update_snapshot(request: Request, snapshot_id: str) -> Response:
    ctx = enforce(request, "volume:update_snapshot")
    body = await body_of(request, "snapshot", SnapshotUpdate)
    if not body.model_fields_set:
        raise BadRequest("Invalid input: at least one of name, description, display_name or display_description "
                         "is required.")

    def write(session: Session) -> dict[str, Any]:
        snap = visible_snapshot(session, snapshot_id, ctx)
        enforce(request, "volume:update_snapshot", {"project_id": snap.project_id})
        fields = body.model_fields_set
        if "name" in fields or "display_name" in fields:
            snap.name = body.name if "name" in fields else body.display_name
        if "description" in fields or "display_description" in fields:
            snap.description = body.description if "description" in fields else body.display_description
        snap.updated_at = utcnow()
        session.flush()
        return {"snapshot": snapshot_detail(request, snap, ctx)}

    return json_response(await state(request).db.run(write, write=True))


async def _start_delete(request: Request, snapshot_id: str, action: str, force: bool) -> None:
    ctx = enforce(request, action)

    def write(session: Session) -> str | None:
        snap = visible_snapshot(session, snapshot_id, ctx)
        enforce(request, action, {"project_id": snap.project_id})
        if not force:
            st.require("delete", "snapshot", snap.id, snap.status, (st.AVAILABLE, st.ERROR))
        volume = session.get(m.Volume, snap.volume_id)
        if snap.provider_location and volume is not None and any(a.connection_info for a in volume.attachments):
            raise BadRequest(f"Invalid snapshot: volume {volume.id} is attached; the file backend deletes snapshots "
                             "of detached volumes only.")
        if snap.host is None or (snap.provider_location is None and snap.status == st.ERROR):
            session.delete(snap)
            return None
        snap.status, snap.updated_at = st.DELETING, utcnow()
        return snap.host

    host = await state(request).db.run(write, write=True)
    if host is not None:
        await state(request).manager.delete_snapshot(host, snapshot_id)


async def delete_snapshot(request: Request, snapshot_id: str) -> Response:
    await _start_delete(request, snapshot_id, "volume:delete_snapshot", force=False)
    return Response(status_code=202)


async def snapshot_action(request: Request, snapshot_id: str) -> Response:
    raw = await json_body(request)
    if not isinstance(raw, dict) or len(raw) != 1:
        raise BadRequest("Invalid request body: it must hold exactly one action.")
    (name, args), = raw.items()
    if name == "os-force_delete":
        await _start_delete(request, snapshot_id, "volume_extension:snapshot_admin_actions:force_delete", force=True)
        return Response(status_code=202)
    if name == "os-reset_status":
        status = args.get("status") if isinstance(args, dict) else None
        if status not in st.SNAPSHOT_STATUSES:
            raise BadRequest(f"Must specify a valid status: one of {', '.join(st.SNAPSHOT_STATUSES)}.")
        ctx = enforce(request, "volume_extension:snapshot_admin_actions:reset_status")

        def write(session: Session) -> None:
            snap = visible_snapshot(session, snapshot_id, ctx)
            snap.status, snap.updated_at = status, utcnow()

        await state(request).db.run(write, write=True)
        return Response(status_code=202)
    raise BadRequest(f"There is no such action: {name}")


# ----- metadata ----------------------------------------------------------------------------------------------------
async def _metadata(request: Request, snapshot_id: str, action: str, change: Any) -> dict[str, str]:
    ctx = enforce(request, action)

    def run(session: Session) -> dict[str, str]:
        snap = visible_snapshot(session, snapshot_id, ctx)
        enforce(request, action, {"project_id": snap.project_id})
        if change is not None:
            change(session, snap)
            snap.updated_at = utcnow()
            session.flush()
            session.expire(snap, ["metadata_items"])
        return {i.key: i.value for i in snap.metadata_items}

    return await state(request).db.run(run, write=change is not None)


def _setter(metadata: dict[str, str], replace: bool) -> Any:
    def change(session: Session, snap: m.Snapshot) -> None:
        have = {i.key: i for i in snap.metadata_items}
        for key, item in have.items():
            if replace and key not in metadata:
                session.delete(item)
        for key, value in metadata.items():
            if key in have:
                have[key].value = value
            else:
                session.add(m.SnapshotMetadata(snapshot_id=snap.id, key=key, value=value))

    return change


async def _body_metadata(request: Request, key: str) -> dict[str, str]:
    raw = await json_body(request)
    if not isinstance(raw, dict) or key not in raw:
        raise BadRequest(f"Malformed request body: '{key}' is required.")
    return check_metadata(raw[key])


async def get_metadata(request: Request, snapshot_id: str) -> Response:
    return json_response({"metadata": await _metadata(request, snapshot_id, "volume:get_snapshot_metadata", None)})


async def create_metadata(request: Request, snapshot_id: str) -> Response:
    metadata = await _body_metadata(request, "metadata")
    result = await _metadata(request, snapshot_id, "volume:update_snapshot_metadata", _setter(metadata, False))
    return json_response({"metadata": result})


async def replace_metadata(request: Request, snapshot_id: str) -> Response:
    metadata = await _body_metadata(request, "metadata")
    result = await _metadata(request, snapshot_id, "volume:update_snapshot_metadata", _setter(metadata, True))
    return json_response({"metadata": result})


async def get_metadata_item(request: Request, snapshot_id: str, key: str) -> Response:
    metadata = await _metadata(request, snapshot_id, "volume:get_snapshot_metadata", None)
    if key not in metadata:
        raise NotFound(f"Snapshot {snapshot_id} has no metadata with key {key}.")
    return json_response({"meta": {key: metadata[key]}})


async def set_metadata_item(request: Request, snapshot_id: str, key: str) -> Response:
    meta = await _body_metadata(request, "meta")
    if len(meta) != 1 or key not in meta:
        raise BadRequest("Request body and URI mismatch: the body must hold exactly the key of the URI.")
    await _metadata(request, snapshot_id, "volume:update_snapshot_metadata", _setter(meta, False))
    return json_response({"meta": meta})


async def delete_metadata_item(request: Request, snapshot_id: str, key: str) -> Response:
    def change(session: Session, snap: m.Snapshot) -> None:
        item = next((i for i in snap.metadata_items if i.key == key), None)
        if item is None:
            raise NotFound(f"Snapshot {snapshot_id} has no metadata with key {key}.")
        session.delete(item)

    await _metadata(request, snapshot_id, "volume:delete_snapshot_metadata", change)
    return Response(status_code=200)
