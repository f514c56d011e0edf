"""`/servers/{id}/metadata` (merge, replace, one key; quota metadata_items) and `/servers/{id}/tags` (2.26)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import delete, select

from pocketstack.common.app import json_response, request_context
from pocketstack.common.errors import BadRequest, Conflict, Forbidden, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.compute import models as m
from pocketstack.compute import states
from pocketstack.compute.api.bodies import wrapped
from pocketstack.compute.api.common import links, state, version
from pocketstack.compute.api.servers import get_instance
from pocketstack.compute.quotas import project_limits

router = APIRouter(prefix="/v2.1")

MAX_TAGS = 50  # Nova's per-server limit
META_STATES = (states.ACTIVE, states.PAUSED, states.SUSPENDED, states.STOPPED)


# ----- metadata ---------------------------------------------------------------------------------------------
def _check_items(items: Any, key: str) -> dict[str, str]:
    if not isinstance(items, dict):
        raise BadRequest(f"Invalid input for field/attribute {key}: it must be an object")
    for name, value in items.items():
        if not 1 <= len(name) <= 255:
            raise BadRequest(f"Invalid input for field/attribute {key}. Value: {name}. Metadata keys must be 1-255 "
                             "characters")
        if not isinstance(value, str) or len(value) > 255:
            raise BadRequest(f"Invalid input for field/attribute {name}: the value must be a string of at most 255 "
                             "characters")
    return items


async def _load(session: Any, uuid: str) -> dict[str, str]:
    rows = (await session.scalars(select(m.InstanceMetadata).where(
        m.InstanceMetadata.instance_uuid == uuid).order_by(m.InstanceMetadata.key))).all()
    return {r.key: r.value for r in rows}


async def _writable(session: Any, request: Request, server_id: str, policy: str) -> m.Instance:
    """The server, when the caller may change its metadata now (Nova: not locked, stable state, no task)."""
    ctx = request_context(request)
    inst = await get_instance(session, request, server_id, ctx)
    state(request).policy.enforce(policy, ctx, {"project_id": inst.project_id})
    if inst.locked and not ctx.is_admin:
        raise Conflict(f"Instance {inst.uuid} is locked")
    if inst.vm_state not in META_STATES or inst.task_state is not None:
        raise Conflict(f"Cannot 'update metadata' instance {inst.uuid} while it is in vm_state {inst.vm_state}")
    return inst


async def _store(session: Any, request: Request, inst: m.Instance, wanted: dict[str, str]) -> None:
    """Make the server's metadata exactly `wanted`, within the metadata_items quota (403 as Nova answers)."""
    limit = (await project_limits(session, state(request).settings, inst.project_id))["metadata_items"]
    if 0 <= limit < len(wanted):
        raise Forbidden(f"Maximum number of metadata items exceeds {limit}")
    await session.execute(delete(m.InstanceMetadata).where(m.InstanceMetadata.instance_uuid == inst.uuid))
    for key, value in wanted.items():
        session.add(m.InstanceMetadata(instance_uuid=inst.uuid, key=key, value=value))
    inst.updated_at = utcnow()


@router.get("/servers/{server_id}/metadata")
async def list_metadata(request: Request, server_id: str) -> Response:
    ctx = request_context(request)
    async with state(request).db.session(write=False) as session:
        inst = await get_instance(session, request, server_id, ctx)
        state(request).policy.enforce("os_compute_api:server-metadata:index", ctx, {"project_id": inst.project_id})
        return json_response({"metadata": await _load(session, inst.uuid)})


@router.post("/servers/{server_id}/metadata")
async def merge_metadata(request: Request, server_id: str) -> Response:
    items = _check_items(await wrapped(request, "metadata"), "metadata")
    async with state(request).db.session(write=True) as session:
        inst = await _writable(session, request, server_id, "os_compute_api:server-metadata:create")
        merged = {**await _load(session, inst.uuid), **items}
        await _store(session, request, inst, merged)
    return json_response({"metadata": merged})


@router.put("/servers/{server_id}/metadata")
async def replace_metadata(request: Request, server_id: str) -> Response:
    items = _check_items(await wrapped(request, "metadata"), "metadata")
    async with state(request).db.session(write=True) as session:
        inst = await _writable(session, request, server_id, "os_compute_api:server-metadata:update_all")
        await _store(session, request, inst, items)
    return json_response({"metadata": items})


@router.get("/servers/{server_id}/metadata/{key}")
async def show_metadata_item(request: Request, server_id: str, key: str) -> Response:
    ctx = request_context(request)
    async with state(request).db.session(write=False) as session:
        inst = await get_instance(session, request, server_id, ctx)
        state(request).policy.enforce("os_compute_api:server-metadata:show", ctx, {"project_id": inst.project_id})
        row = await session.get(m.InstanceMetadata, (inst.uuid, key))
    if row is None:
        raise NotFound("Metadata item was not found")
    return json_response({"meta": {key: row.value}})


@router.put("/servers/{server_id}/metadata/{key}")
async def set_metadata_item(request: Request, server_id: str, key: str) -> Response:
    item = _check_items(await wrapped(request, "meta"), "meta")
    if len(item) > 1:
        raise BadRequest("Request body contains too many items")
    if key not in item:
        raise BadRequest("Request body and URI mismatch")
    async with state(request).db.session(write=True) as session:
        inst = await _writable(session, request, server_id, "os_compute_api:server-metadata:update")
        await _store(session, request, inst, {**await _load(session, inst.uuid), **item})
    return json_response({"meta": item})


@router.delete("/servers/{server_id}/metadata/{key}")
async def delete_metadata_item(request: Request, server_id: str, key: str) -> Response:
    async with state(request).db.session(write=True) as session:
        inst = await _writable(session, request, server_id, "os_compute_api:server-metadata:delete")
        row = await session.get(m.InstanceMetadata, (inst.uuid, key))
        if row is None:
            raise NotFound("Metadata item was not found")
        await session.delete(row)
        inst.updated_at = utcnow()
    return Response(status_code=204)


# ----- tags (2.26) ------------------------------------------------------------------------------------------
def _check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not 1 <= len(tag) <= 60 or "/" in tag or "," in tag or not tag.isprintable():
        raise BadRequest(f"Invalid input for field/attribute tag. Value: {tag}. A tag is 1-60 printable "
                         "characters without '/' or ','")
    return tag


async def _tag_target(session: Any, request: Request, server_id: str, policy: str) -> m.Instance:
    if version(request) < "2.26":
        raise NotFound("Server tags need microversion 2.26 or later.")
    ctx = request_context(request)
    inst = await get_instance(session, request, server_id, ctx)
    state(request).policy.enforce(policy, ctx, {"project_id": inst.project_id})
    return inst


async def _tags(session: Any, uuid: str) -> list[str]:
    return list((await session.scalars(select(m.InstanceTag.tag).where(
        m.InstanceTag.instance_uuid == uuid).order_by(m.InstanceTag.tag))).all())


@router.get("/servers/{server_id}/tags")
async def list_tags(request: Request, server_id: str) -> Response:
    async with state(request).db.session(write=False) as session:
        inst = await _tag_target(session, request, server_id, "os_compute_api:os-server-tags:index")
        return json_response({"tags": await _tags(session, inst.uuid)})


@router.put("/servers/{server_id}/tags")
async def replace_tags(request: Request, server_id: str) -> Response:
    raw = await wrapped(request, "tags")
    if not isinstance(raw, list):
        raise BadRequest("Invalid input for field/attribute tags: it must be a list")
    tags = list(dict.fromkeys(_check_tag(t) for t in raw))
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
    async with state(request).db.session(write=True) as session:
        inst = await _tag_target(session, request, server_id, "os_compute_api:os-server-tags:update_all")
        await session.execute(delete(m.InstanceTag).where(m.InstanceTag.instance_uuid == inst.uuid))
        for tag in tags:
            session.add(m.InstanceTag(instance_uuid=inst.uuid, tag=tag))
        inst.updated_at = utcnow()
    return json_response({"tags": sorted(tags)})


@router.delete("/servers/{server_id}/tags")
async def delete_tags(request: Request, server_id: str) -> Response:
    async with state(request).db.session(write=True) as session:
        inst = await _tag_target(session, request, server_id, "os_compute_api:os-server-tags:delete_all")
        await session.execute(delete(m.InstanceTag).where(m.InstanceTag.instance_uuid == inst.uuid))
        inst.updated_at = utcnow()
    return Response(status_code=204)


@router.get("/servers/{server_id}/tags/{tag}")
async def check_tag(request: Request, server_id: str, tag: str) -> Response:
    async with state(request).db.session(write=False) as session:
        inst = await _tag_target(session, request, server_id, "os_compute_api:os-server-tags:show")
        if await session.get(m.InstanceTag, (inst.uuid, tag)) is None:
            raise NotFound(f"Instance {inst.uuid} has no tag '{tag}'")
    return Response(status_code=204)


@router.put("/servers/{server_id}/tags/{tag}")
async def add_tag(request: Request, server_id: str, tag: str) -> Response:
    _check_tag(tag)
    async with state(request).db.session(write=True) as session:
        inst = await _tag_target(session, request, server_id, "os_compute_api:os-server-tags:update")
        if await session.get(m.InstanceTag, (inst.uuid, tag)) is not None:
            return Response(status_code=204)
        if len(await _tags(session, inst.uuid)) >= MAX_TAGS:
            raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
        session.add(m.InstanceTag(instance_uuid=inst.uuid, tag=tag))
        inst.updated_at = utcnow()
    location = f"{links(request, 'servers', server_id)[0]['href']}/tags/{tag}"
    return Response(status_code=201, headers={"Location": location})


@router.delete("/servers/{server_id}/tags/{tag}")
async def delete_tag(request: Request, server_id: str, tag: str) -> Response:
    async with state(request).db.session(write=True) as session:
        inst = await _tag_target(session, request, server_id, "os_compute_api:os-server-tags:delete")
        row = await session.get(m.InstanceTag, (inst.uuid, tag))
        if row is None:
            raise NotFound(f"Instance {inst.uuid} has no tag '{tag}'")
        await session.delete(row)
        inst.updated_at = utcnow()
    return Response(status_code=204)
