"""`/v3/{project_id}/snapshots`: create, list, show, update, delete, metadata and the admin actions."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.volume import states as st
from pocketstack.volume.api.common import (
    all_projects,
    authorize,
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
from pocketstack.volume.api.views import snapshot_detail
from pocketstack.volume.store import snapshots as store
from pocketstack.volume.store.lookups import Snapshot

SNAPSHOT_FILTERS = {"name", "status", "volume_id", "project_id", "metadata", "consumes_quota"}
SNAPSHOT_SORT = {"id": "id", "name": "name", "display_name": "name", "status": "status", "created_at": "created_at",
                 "updated_at": "updated_at", "volume_id": "volume_id", "size": "volume_size"}


class SnapshotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    volume_id: str | None = None  # null: the volume is not found (404), as Cinder answers
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
    snapshot_id = str(uuid.uuid4())
    db = state(request).db
    host = await store.create_snapshot(
        db, state(request).settings, ctx, authorize(request, "volume:create_snapshot"), body.volume_id,
        snapshot_id, force=force, metadata=metadata,
        fields={"name": body.name or body.display_name, "description": body.description or body.display_description})
    await state(request).manager.create_snapshot(host, snapshot_id)
    snap = await store.get_snapshot(db, snapshot_id, ctx)
    return json_response({"snapshot": snapshot_detail(request, snap, ctx, extended=False)}, status=202)


def _matches(snap: Snapshot, filters: dict[str, str]) -> bool:
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


async def _list(request: Request, detail: bool) -> Response:
    ctx = enforce(request, "volume:get_all_snapshots")
    sort = sort_spec(request, SNAPSHOT_SORT)
    filters = check_filters(request, SNAPSHOT_FILTERS)
    rows = await store.list_snapshots(state(request).db, None if all_projects(request, ctx) else ctx.project_id)
    page, total, more = paginate(request, [s for s in rows if _matches(s, filters)], sort)
    views = [snapshot_detail(request, s, ctx) for s in page]
    if not detail:  # the summary drops the extended attributes
        views = [{k: v for k, v in view.items() if not k.startswith("os-extended")} for view in views]
    return json_response(collection(request, "snapshots", views, total, more,
                                    "snapshots/detail" if detail else "snapshots"))


async def list_snapshots(request: Request) -> Response:
    return await _list(request, detail=False)


async def list_snapshots_detail(request: Request) -> Response:
    return await _list(request, detail=True)


async def show_snapshot(request: Request, snapshot_id: str) -> Response:
    ctx = enforce(request, "volume:get_snapshot")
    snap = await store.get_snapshot(state(request).db, snapshot_id, ctx)
    enforce(request, "volume:get_snapshot", {"project_id": snap.project_id})
    return json_response({"snapshot": snapshot_detail(request, snap, ctx)})


async def update_snapshot(request: Request, snapshot_id: str) -> Response:
    ctx = enforce(request, "volume:update_snapshot")
    body = await body_of(request, "snapshot", SnapshotUpdate)
    fields = body.model_fields_set
    if not fields:
        raise BadRequest("Invalid input: at least one of name, description, display_name or display_description "
                         "is required.")
    changes: dict[str, Any] = {}
    if "name" in fields or "display_name" in fields:
        changes["name"] = body.name if "name" in fields else body.display_name
    if "description" in fields or "display_description" in fields:
        changes["description"] = body.description if "description" in fields else body.display_description
    snap = await store.update_snapshot(state(request).db, ctx, authorize(request, "volume:update_snapshot"),
                                       snapshot_id, changes)
    return json_response({"snapshot": snapshot_detail(request, snap, ctx, extended=False)})


async def _start_delete(request: Request, snapshot_id: str, action: str, force: bool) -> None:
    ctx = enforce(request, action)
    host = await store.start_delete(state(request).db, ctx, authorize(request, action), snapshot_id, force)
    if host is not None:
        await state(request).manager.delete_snapshot(host, snapshot_id)


async def delete_snapshot(request: Request, snapshot_id: str) -> Response:
    await _start_delete(request, snapshot_id, "volume:delete_snapshot", force=False)
    return Response(status_code=202)


async def _update_status(request: Request, snapshot_id: str, args: Any) -> None:
    if not isinstance(args, dict) or not isinstance(args.get("status"), str):
        raise BadRequest("Invalid input received: 'status' must be specified.")
    progress = args.get("progress")
    if progress is not None and (not isinstance(progress, str) or len(progress) > 8):
        raise BadRequest("Invalid input received: progress must be a string such as '80%'.")
    action = "snapshot_extension:snapshot_actions:update_snapshot_status"
    ctx = enforce(request, action)
    await store.update_status(state(request).db, ctx, authorize(request, action), snapshot_id, args["status"],
                              progress)


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
        await store.reset_status(state(request).db, ctx, snapshot_id, status)
        return Response(status_code=202)
    if name == "os-update_snapshot_status":
        await _update_status(request, snapshot_id, args)
        return Response(status_code=202)
    raise BadRequest(f"There is no such action: {name}")


# ----- metadata ----------------------------------------------------------------------------------------------------
async def _body_metadata(request: Request, key: str) -> dict[str, str]:
    raw = await json_body(request)
    if not isinstance(raw, dict) or key not in raw:
        raise BadRequest(f"Malformed request body: '{key}' is required.")
    return check_metadata(raw[key])


async def _read_metadata(request: Request, snapshot_id: str) -> dict[str, str]:
    action = "volume:get_snapshot_metadata"
    return await store.get_metadata(state(request).db, enforce(request, action), authorize(request, action),
                                    snapshot_id)


async def _write_metadata(request: Request, snapshot_id: str, metadata: dict[str, str],
                          replace: bool) -> dict[str, str]:
    action = "volume:update_snapshot_metadata"
    return await store.set_metadata(state(request).db, enforce(request, action), authorize(request, action),
                                    snapshot_id, metadata, replace=replace)


async def get_metadata(request: Request, snapshot_id: str) -> Response:
    return json_response({"metadata": await _read_metadata(request, snapshot_id)})


async def create_metadata(request: Request, snapshot_id: str) -> Response:
    metadata = await _body_metadata(request, "metadata")
    return json_response({"metadata": await _write_metadata(request, snapshot_id, metadata, False)})


async def replace_metadata(request: Request, snapshot_id: str) -> Response:
    metadata = await _body_metadata(request, "metadata")
    return json_response({"metadata": await _write_metadata(request, snapshot_id, metadata, True)})


async def get_metadata_item(request: Request, snapshot_id: str, key: str) -> Response:
    metadata = await _read_metadata(request, snapshot_id)
    if key not in metadata:
        raise NotFound(f"Snapshot {snapshot_id} has no metadata with key {key}.")
    return json_response({"meta": {key: metadata[key]}})


async def set_metadata_item(request: Request, snapshot_id: str, key: str) -> Response:
    meta = await _body_metadata(request, "meta")
    if len(meta) != 1 or key not in meta:
        raise BadRequest("Request body and URI mismatch: the body must hold exactly the key of the URI.")
    await _write_metadata(request, snapshot_id, meta, False)
    return json_response({"meta": meta})


async def delete_metadata_item(request: Request, snapshot_id: str, key: str) -> Response:
    action = "volume:delete_snapshot_metadata"
    await store.delete_metadata(state(request).db, enforce(request, action), authorize(request, action),
                                snapshot_id, key)
    return Response(status_code=200)
