"""Image records: create, list (filters, sorting, marker pagination), show, JSON-patch update, delete, tags,
deactivate and reactivate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from sqlalchemy import Select, and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge
from pocketstack.image import models as m
from pocketstack.image.api.common import check_writable, manager, require_media_type, validate_attr
from pocketstack.image.service import (
    CORE,
    IMPORT_METHODS,
    MAX_PROPERTIES,
    MAX_TAGS,
    image_body,
    utcnow,
    valid_uuid,
)

router = APIRouter(prefix="/v2")

PATCH_TYPES = ("application/openstack-images-v2.1-json-patch", "application/openstack-images-v2.0-json-patch")
IMPORT_HEADERS = {"OpenStack-image-import-methods": ",".join(IMPORT_METHODS)}
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at",
             "visibility", "owner", "min_disk", "min_ram", "virtual_size")
DEFAULT_LIMIT, MAX_LIMIT = 25, 1000
LIST_PARAMS = {"limit", "marker", "sort_key", "sort_dir", "sort", "name", "status", "visibility", "owner",
               "tag", "disk_format", "container_format", "size_min", "size_max", "member_status", "os_hidden",
               "protected", "id", "created_at", "updated_at"}
TIME_OPERATORS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__", "eq": "__eq__",
                  "neq": "__ne__"}
IN_FILTERS = ("id", "name", "status", "disk_format", "container_format")


def apply_attr(image: m.Image, name: str, value: Any) -> None:
    """Set one validated attribute: a core column, the tag list, or a custom property (None removes it)."""
    if name == "tags":
        image.tags = [m.ImageTag(value=tag) for tag in value]
    elif name in CORE:
        setattr(image, name, value)
    else:
        existing = next((p for p in image.properties if p.name == name), None)
        if value is None:
            if existing is not None:
                image.properties.remove(existing)
        elif existing is not None:
            existing.value = value
        else:
            image.properties.append(m.ImageProperty(name=name, value=value))


def enforce_visibility(request: Request, ctx: RequestContext, image: m.Image, visibility: str) -> None:
    mgr = manager(request)
    if visibility == "public":
        mgr.enforce("publicize_image", ctx, image)
    elif visibility == "community":
        mgr.enforce("communitize_image", ctx, image)


# ----- create --------------------------------------------------------------------------------------------
@router.post("/images")
async def create_image(request: Request) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    require_media_type(request, "application/json")
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object of image attributes.")
    image_id = body.pop("id", None)
    if image_id is not None and (not isinstance(image_id, str) or not valid_uuid(image_id)):
        raise BadRequest(f"Invalid id {image_id!r}: it must be a UUID.")
    now = utcnow()
    image = m.Image(id=str(uuid.UUID(image_id)) if image_id else str(uuid.uuid4()), name=None, status="queued",
                    visibility="shared", protected=False, os_hidden=False, owner=ctx.project_id, min_disk=0,
                    min_ram=0, created_at=now, updated_at=now, deleted=False, properties=[], tags=[])
    for name, value in body.items():
        check_writable(name)
        apply_attr(image, name, validate_attr(name, value, ctx))
    if len(image.properties) > MAX_PROPERTIES:
        raise BadRequest(f"An image may have at most {MAX_PROPERTIES} custom properties.")
    mgr.enforce("add_image", ctx, image)
    enforce_visibility(request, ctx, image, image.visibility)
    async with mgr.db.session(write=True) as session:
        if await session.get(m.Image, image.id) is not None:
            raise Conflict(f"An image with identifier {image.id} already exists.")
        count, _ = await mgr.usage(session, image.owner)
        quota = mgr.settings.image.quota_image_count
        if 0 <= quota <= count:
            raise PayloadTooLarge(f"The project's quota of {quota} images is reached.")
        session.add(image)
    return json_response(image_body(image), status=201, headers=IMPORT_HEADERS)


# ----- list ----------------------------------------------------------------------------------------------
def _int_param(params: Any, name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Invalid value {raw!r} for '{name}': an integer is required.")
    if value < 0:
        raise BadRequest(f"Invalid value {raw!r} for '{name}': it must not be negative.")
    return value


def _bool_param(params: Any, name: str) -> bool | None:
    raw = params.get(name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise BadRequest(f"Invalid value {raw!r} for '{name}': true or false.")
    return raw.lower() == "true"


def _sorting(params: Any) -> list[tuple[str, str]]:
    """[(key, dir)] from `sort=k1:asc,k2` or repeated `sort_key`/`sort_dir`; id always breaks ties."""
    pairs: list[tuple[str, str]] = []
    if params.get("sort"):
        if params.getlist("sort_key") or params.getlist("sort_dir"):
            raise BadRequest("'sort' cannot be combined with 'sort_key' or 'sort_dir'.")
        for item in params["sort"].split(","):
            key, _, direction = item.strip().partition(":")
            pairs.append((key, direction or "desc"))
    else:
        keys = params.getlist("sort_key") or ["created_at"]
        dirs = params.getlist("sort_dir")
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise BadRequest("Give one 'sort_dir' for every 'sort_key', or a single one for all.")
        pairs = [(key, dirs[i] if len(dirs) > 1 else (dirs[0] if dirs else "desc")) for i, key in enumerate(keys)]
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid sort key {key!r}: one of {', '.join(SORT_KEYS)}.")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction {direction!r}: asc or desc.")
    if "id" not in (k for k, _ in pairs):
        pairs.append(("id", pairs[-1][1]))
    return pairs


def _match(column: Any, raw: str) -> Any:
    """`value` or Glance's `in:"a","b"` operator."""
    if raw.startswith("in:"):
        values = [v.strip().strip('"') for v in raw[3:].split(",") if v.strip()]
        return column.in_(values)
    return column == raw


def _time_filter(column: Any, name: str, raw: str) -> Any:
    """Glance's `created_at=gte:2026-01-01T00:00:00Z` comparison (operator defaults to eq)."""
    operator, _, value = raw.partition(":") if raw.split(":", 1)[0] in TIME_OPERATORS else ("eq", "", raw)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid {name} filter {raw!r}: use OPERATOR:ISO-8601 time, e.g. gte:2026-01-01T00:00:00Z.")
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return getattr(column, TIME_OPERATORS[operator])(when)


def _filters(query: Select[Any], params: Any, ctx: RequestContext, mgr: Any) -> Select[Any]:
    visibility = params.get("visibility")
    member_status = params.get("member_status", "accepted")
    if member_status not in ("pending", "accepted", "rejected", "all"):
        raise BadRequest(f"Invalid member_status {member_status!r}: pending, accepted, rejected or all.")
    if visibility not in (None, "public", "private", "shared", "community", "all"):
        raise BadRequest(f"Invalid visibility {visibility!r}: public, private, shared, community or all.")
    query = query.where(m.Image.deleted.is_(False), mgr.visible_clause(
        ctx, member_status, community=visibility in ("community", "all")))
    if visibility not in (None, "all"):
        query = query.where(m.Image.visibility == visibility)
    for name in IN_FILTERS:
        if params.get(name) is not None:
            query = query.where(_match(getattr(m.Image, name), params[name]))
    if params.get("owner") is not None:
        query = query.where(m.Image.owner == params["owner"])
    for tag in params.getlist("tag"):
        query = query.where(m.Image.id.in_(select(m.ImageTag.image_id).where(m.ImageTag.value == tag)))
    size_min, size_max = _int_param(params, "size_min"), _int_param(params, "size_max")
    if size_min is not None:
        query = query.where(m.Image.size >= size_min)
    if size_max is not None:
        query = query.where(m.Image.size <= size_max)
    for name in ("created_at", "updated_at"):
        for raw in params.getlist(name):
            query = query.where(_time_filter(getattr(m.Image, name), name, raw))
    hidden = _bool_param(params, "os_hidden")
    query = query.where(m.Image.os_hidden.is_(bool(hidden)))
    protected = _bool_param(params, "protected")
    if protected is not None:
        query = query.where(m.Image.protected.is_(protected))
    for name, value in params.multi_items():
        if name not in LIST_PARAMS:  # any other parameter filters on a custom property
            query = query.where(m.Image.id.in_(select(m.ImageProperty.image_id).where(
                m.ImageProperty.name == name, m.ImageProperty.value == value)))
    return query


def _after_marker(marker: m.Image, sorting: list[tuple[str, str]]) -> Any:
    """Rows strictly after the marker in the sort order (keyset pagination, NULLs first)."""
    clauses = []
    for i, (key, direction) in enumerate(sorting):
        column, value = getattr(m.Image, key), getattr(marker, key)
        equal_before = [
            (getattr(m.Image, k).is_(None) if getattr(marker, k) is None else getattr(m.Image, k) == getattr(
                marker, k)) for k, _ in sorting[:i]]
        if value is None:
            beyond = column.is_not(None) if direction == "asc" else false()
        elif direction == "asc":
            beyond = column > value
        else:
            beyond = or_(column < value, column.is_(None))
        clauses.append(and_(*equal_before, beyond))
    return or_(*clauses)


def _order(sorting: list[tuple[str, str]]) -> list[Any]:
    order = []
    for key, direction in sorting:
        column = getattr(m.Image, key)
        order.append(column.asc().nulls_first() if direction == "asc" else column.desc().nulls_last())
    return order


@router.get("/images")
async def list_images(request: Request) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    mgr.enforce("get_images", ctx)
    params = request.query_params
    limit = _int_param(params, "limit")
    limit = DEFAULT_LIMIT if limit is None else min(limit, MAX_LIMIT)
    sorting = _sorting(params)
    async with mgr.db.session(write=False) as session:
        query = _filters(select(m.Image), params, ctx, mgr)
        marker_id = params.get("marker")
        if marker_id:
            marker = await session.get(m.Image, marker_id) if valid_uuid(marker_id) else None
            if marker is None or marker.deleted or not await session.run_sync(mgr.can_see, ctx, marker):
                raise BadRequest(f"Invalid marker. Image {marker_id} could not be found.")
            query = query.where(_after_marker(marker, sorting))
        rows = list((await session.execute(query.order_by(*_order(sorting)).limit(limit + 1))).scalars())
    images = rows[:limit]
    body: dict[str, Any] = {"images": [image_body(i) for i in images], "first": "/v2/images",
                            "schema": "/v2/schemas/images"}
    if len(rows) > limit and images:
        kept = [(k, v) for k, v in params.multi_items() if k not in ("marker", "limit")]
        body["next"] = "/v2/images?" + urlencode([*kept, ("marker", images[-1].id), ("limit", str(limit))])
    return json_response(body)


# ----- show, update, delete ------------------------------------------------------------------------------
@router.get("/images/{image_id}")
async def show_image(request: Request, image_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    image = await mgr.db.run(lambda session: mgr.get_image(session, ctx, image_id), write=False)  # every boot
    mgr.enforce("get_image", ctx, image)
    return json_response(image_body(image))


def _patch_path(op: dict[str, Any]) -> str:
    path = op.get("path")
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2:
        raise BadRequest(f"Invalid JSON pointer {path!r} for operation {op.get('op')!r}.")
    parts = path[1:].split("/")
    if parts[0] == "locations":
        raise Forbidden("Image locations cannot be changed through this API.")
    if len(parts) > 1:
        raise BadRequest(f"Nested paths such as {path!r} are not supported.")
    return parts[0].replace("~1", "/").replace("~0", "~")


@router.patch("/images/{image_id}")
async def update_image(request: Request, image_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    require_media_type(request, *PATCH_TYPES)
    ops = await json_body(request)
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise BadRequest("A JSON patch document is a list of operation objects.")
    async with mgr.db.session(write=True) as session:
        image = await session.run_sync(mgr.get_image, ctx, image_id)
        mgr.enforce("modify_image", ctx, image)
        mgr.require_owner(ctx, image, "modify")
        for op in ops:
            await _apply_op(request, ctx, session, image, op)
        if len(image.properties) > MAX_PROPERTIES:
            raise BadRequest(f"An image may have at most {MAX_PROPERTIES} custom properties.")
        image.updated_at = utcnow()
        await session.flush()
    return json_response(image_body(image))


async def _apply_op(request: Request, ctx: RequestContext, session: AsyncSession, image: m.Image,
                    op: dict[str, Any]) -> None:
    kind = op.get("op")
    if kind not in ("add", "replace", "remove"):
        raise BadRequest(f"Unsupported JSON patch operation {kind!r}: add, replace or remove.")
    name = _patch_path(op)
    check_writable(name)
    if kind != "remove" and "value" not in op:
        raise BadRequest(f"Operation {kind!r} of {op['path']!r} needs a 'value'.")
    present = name in CORE or any(p.name == name for p in image.properties)
    if kind == "remove":
        if name in CORE:
            raise Forbidden(f"Attribute '{name}' is a core attribute and cannot be removed.")
        if not present:
            raise Conflict(f"Property {name} does not exist.")
        apply_attr(image, name, None)
        return
    if kind == "replace" and not present:
        raise Conflict(f"Property {name} does not exist.")
    value = validate_attr(name, op["value"], ctx)
    if name in ("disk_format", "container_format") and value != getattr(image, name) and image.status != "queued":
        raise Forbidden(f"Attribute {name} can be only replaced for a queued image.")
    if name == "visibility" and value != image.visibility:
        enforce_visibility(request, ctx, image, value)
    if name == "owner" and value != image.owner:
        manager(request).enforce("set_image_owner", ctx, image)
    apply_attr(image, name, value)


@router.delete("/images/{image_id}", status_code=204)
async def delete_image(request: Request, image_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        image = await session.run_sync(mgr.get_image, ctx, image_id)
        mgr.enforce("delete_image", ctx, image)
        mgr.require_owner(ctx, image, "delete")
        if image.protected:
            raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
        location, staged = image.location, image.staging_location
        image.status, image.deleted, image.deleted_at = "deleted", True, utcnow()
        image.location = image.staging_location = None
        image.size = None  # deleted images no longer count against the storage quota
        image.updated_at = image.deleted_at
    await mgr.delete_data(location, staged)
    return Response(status_code=204)


# ----- tags ----------------------------------------------------------------------------------------------
@router.put("/images/{image_id}/tags/{tag}", status_code=204)
async def add_tag(request: Request, image_id: str, tag: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    validate_attr("tags", [tag], ctx)
    async with mgr.db.session(write=True) as session:
        image = await session.run_sync(mgr.get_image, ctx, image_id)
        mgr.enforce("modify_image", ctx, image)
        mgr.require_owner(ctx, image, "modify")
        if all(t.value != tag for t in image.tags):
            if len(image.tags) >= MAX_TAGS:
                raise PayloadTooLarge(f"An image may have at most {MAX_TAGS} tags.")
            image.tags.append(m.ImageTag(value=tag))
            image.updated_at = utcnow()
    return Response(status_code=204)


@router.delete("/images/{image_id}/tags/{tag}", status_code=204)
async def delete_tag(request: Request, image_id: str, tag: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        image = await session.run_sync(mgr.get_image, ctx, image_id)
        mgr.enforce("modify_image", ctx, image)
        mgr.require_owner(ctx, image, "modify")
        existing = next((t for t in image.tags if t.value == tag), None)
        if existing is None:
            raise NotFound(f"Tag {tag} not found on image {image_id}.")
        image.tags.remove(existing)
        image.updated_at = utcnow()
    return Response(status_code=204)


# ----- actions -------------------------------------------------------------------------------------------
@router.post("/images/{image_id}/actions/{action}", status_code=204)
async def image_action(request: Request, image_id: str, action: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    if action not in ("deactivate", "reactivate"):
        raise NotFound(f"Unknown image action {action!r}.")
    async with mgr.db.session(write=True) as session:
        image = await session.run_sync(mgr.get_image, ctx, image_id)
        mgr.enforce(action, ctx, image)
        mgr.require_owner(ctx, image, action)
        source, target = ("active", "deactivated") if action == "deactivate" else ("deactivated", "active")
        if image.status not in (source, target):
            raise Forbidden(f"Not allowed to {action} an image in status '{image.status}'.")
        image.status = target
        image.updated_at = utcnow()
    return Response(status_code=204)
