"""Image records: create, list (filters, sorting, marker pagination), show, JSON-patch update, delete, tags,
deactivate and reactivate."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response

from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Conflict, Forbidden, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.common.validation import check_text
from pocketstack.image.api.common import check_writable, manager, require_media_type, validate_attr
from pocketstack.image.service import IMPORT_METHODS, MAX_PROPERTIES, MAX_TAGS, image_body
from pocketstack.image.store import CORE, Image, ImageQuery, apply_attr, new_image, tag_image, untag_image, valid_uuid

PATCH_V21 = "application/openstack-images-v2.1-json-patch"  # JSON patch, RFC 6902: {"op": ..., "path": ...}
PATCH_V20 = "application/openstack-images-v2.0-json-patch"  # draft 4 of it: {"replace": "/name", "value": ...}
PATCH_TYPES = (PATCH_V21, PATCH_V20)
PATCH_OPS = ("add", "replace", "remove")
IMPORT_HEADERS = {"OpenStack-image-import-methods": ",".join(IMPORT_METHODS)}
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at",
             "visibility", "owner", "min_disk", "min_ram", "virtual_size")
DEFAULT_LIMIT, MAX_LIMIT = 25, 1000
LIST_PARAMS = {"limit", "marker", "sort_key", "sort_dir", "sort", "name", "status", "visibility", "owner",
               "tag", "disk_format", "container_format", "size_min", "size_max", "member_status", "os_hidden",
               "protected", "id", "created_at", "updated_at"}
IN_FILTERS = ("id", "name", "status", "disk_format", "container_format")


def _enforce_visibility(request: Request, ctx: RequestContext, image: Image, visibility: str) -> None:
    mgr = manager(request)
    if visibility == "public":
        mgr.enforce("publicize_image", ctx, image)
    elif visibility == "community":
        mgr.enforce("communitize_image", ctx, image)


# ----- create --------------------------------------------------------------------------------------------
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
    image = new_image(str(uuid.UUID(image_id)) if image_id else str(uuid.uuid4()), ctx.project_id)
    for name, value in body.items():
        check_writable(name)
        apply_attr(image, name, validate_attr(name, value, ctx))
    if len(image.properties) > MAX_PROPERTIES:
        raise BadRequest(f"An image may have at most {MAX_PROPERTIES} custom properties.")
    mgr.enforce("add_image", ctx, image)
    _enforce_visibility(request, ctx, image, image.visibility)
    await mgr.images.add(image, mgr.settings.image.quota_image_count)
    return json_response(image_body(image, mgr.store.id), status=201, headers=IMPORT_HEADERS)


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


def _query(params: Any) -> ImageQuery:
    """The list request's filters, checked (the store turns them into SQL)."""
    visibility = params.get("visibility")
    member_status = params.get("member_status", "accepted")
    if member_status not in ("pending", "accepted", "rejected", "all"):
        raise BadRequest(f"Invalid member_status {member_status!r}: pending, accepted, rejected or all.")
    if visibility not in (None, "public", "private", "shared", "community", "all"):
        raise BadRequest(f"Invalid visibility {visibility!r}: public, private, shared, community or all.")
    limit = _int_param(params, "limit")
    return ImageQuery(
        visibility=visibility, member_status=member_status,
        matches={name: params[name] for name in IN_FILTERS if params.get(name) is not None},
        owner=params.get("owner"), tags=params.getlist("tag"),
        size_min=_int_param(params, "size_min"), size_max=_int_param(params, "size_max"),
        times=[(name, raw) for name in ("created_at", "updated_at") for raw in params.getlist(name)],
        os_hidden=bool(_bool_param(params, "os_hidden")), protected=_bool_param(params, "protected"),
        properties=[(name, value) for name, value in params.multi_items() if name not in LIST_PARAMS],
        sorting=_sorting(params), marker=params.get("marker") or None,
        limit=DEFAULT_LIMIT if limit is None else min(limit, MAX_LIMIT))


async def list_images(request: Request) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    mgr.enforce("get_images", ctx)
    params = request.query_params
    query = _query(params)
    limit = query.limit
    rows = await mgr.images.page(ctx, query)
    images = rows[:limit]
    body: dict[str, Any] = {"images": [image_body(i, mgr.store.id) for i in images], "first": "/v2/images",
                            "schema": "/v2/schemas/images"}
    if len(rows) > limit and images:
        kept = [(k, v) for k, v in params.multi_items() if k not in ("marker", "limit")]
        body["next"] = "/v2/images?" + urlencode([*kept, ("marker", images[-1].id), ("limit", str(limit))])
    return json_response(body)


# ----- show, update, delete ------------------------------------------------------------------------------
async def show_image(request: Request, image_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    image = await mgr.images.get(ctx, image_id)  # every boot
    mgr.enforce("get_image", ctx, image)
    return json_response(image_body(image, mgr.store.id))


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


async def update_image(request: Request, image_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    draft4 = require_media_type(request, *PATCH_TYPES) == PATCH_V20
    raw_ops = await json_body(request)
    if not isinstance(raw_ops, list) or not all(isinstance(op, dict) for op in raw_ops):
        raise BadRequest("A JSON patch document is a list of operation objects.")
    ops = [_draft4_op(op) if draft4 else op for op in raw_ops]

    def patch(image: Image) -> dict[str, Any]:
        mgr.enforce("modify_image", ctx, image)
        mgr.require_owner(ctx, image, "modify")
        for op in ops:
            _apply_op(request, ctx, image, op, draft4)
        if len(image.properties) > MAX_PROPERTIES:
            raise BadRequest(f"An image may have at most {MAX_PROPERTIES} custom properties.")
        image.updated_at = utcnow()
        return image_body(image, mgr.store.id)

    return json_response(await mgr.images.change(ctx, image_id, patch))


def _draft4_op(raw: dict[str, Any]) -> dict[str, Any]:
    """A draft-4 operation (the operation's name is the key holding the path) in the RFC 6902 form."""
    kinds = [kind for kind in PATCH_OPS if kind in raw]
    if len(kinds) != 1:
        raise BadRequest('Operation objects must contain exactly one member named "add", "remove", or "replace".')
    op = {"op": kinds[0], "path": raw[kinds[0]]}
    if "value" in raw:
        op["value"] = raw["value"]
    return op


def _apply_op(request: Request, ctx: RequestContext, image: Image, op: dict[str, Any], draft4: bool) -> None:
    kind = op.get("op")
    if kind not in PATCH_OPS:
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
    if kind == "add" and present and draft4:  # draft 4's add only adds; RFC 6902's also replaces
        raise Conflict(f"Property {name} already present.")
    value = validate_attr(name, op["value"], ctx)
    if name in ("disk_format", "container_format") and value != getattr(image, name) and image.status != "queued":
        raise Forbidden(f"Attribute {name} can be only replaced for a queued image.")
    if name == "visibility" and value != image.visibility:
        _enforce_visibility(request, ctx, image, value)
    if name == "owner" and value != image.owner:
        manager(request).enforce("set_image_owner", ctx, image)
    apply_attr(image, name, value)


async def delete_image(request: Request, image_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)

    def delete(image: Image) -> tuple[str | None, str | None]:
        mgr.enforce("delete_image", ctx, image)
        mgr.require_owner(ctx, image, "delete")
        if image.protected:
            raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
        location, staged = image.location, image.staging_location
        image.status, image.deleted, image.deleted_at = "deleted", True, utcnow()
        image.location = image.staging_location = None
        image.size = None  # deleted images no longer count against the storage quota
        image.updated_at = image.deleted_at
        return location, staged

    await mgr.delete_data(*await mgr.images.change(ctx, image_id, delete))
    return Response(status_code=204)


def _may_modify(mgr: Any, ctx: RequestContext, image: Image) -> None:
    mgr.enforce("modify_image", ctx, image)
    mgr.require_owner(ctx, image, "modify")


# ----- tags ----------------------------------------------------------------------------------------------
async def add_tag(request: Request, image_id: str, tag: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    check_text("tag", tag)  # a path segment: json_body's check does not see it
    validate_attr("tags", [tag], ctx)

    def tagged(image: Image) -> None:
        _may_modify(mgr, ctx, image)
        tag_image(image, tag, MAX_TAGS)

    await mgr.images.change(ctx, image_id, tagged)
    return Response(status_code=204)


async def delete_tag(request: Request, image_id: str, tag: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)

    def untagged(image: Image) -> None:
        _may_modify(mgr, ctx, image)
        untag_image(image, tag)

    await mgr.images.change(ctx, image_id, untagged)
    return Response(status_code=204)


# ----- actions -------------------------------------------------------------------------------------------
async def image_action(request: Request, image_id: str, action: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    if action not in ("deactivate", "reactivate"):
        raise NotFound(f"Unknown image action {action!r}.")

    def act(image: Image) -> None:
        mgr.enforce(action, ctx, image)
        mgr.require_owner(ctx, image, action)
        source, target = ("active", "deactivated") if action == "deactivate" else ("deactivated", "active")
        if image.status not in (source, target):
            raise Forbidden(f"Not allowed to {action} an image in status '{image.status}'.")
        image.status = target
        image.updated_at = utcnow()

    await mgr.images.change(ctx, image_id, act)
    return Response(status_code=204)
