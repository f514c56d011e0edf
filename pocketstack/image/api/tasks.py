"""The tasks API (`/v2/tasks`, admin only by default as in Glance): an `import` task makes an image from the
data at an http(s) URL, in the background; the task tells how it went."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from fastapi import Request, Response

from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.clients.base import http_session
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Conflict
from pocketstack.common.timeutils import utcnow
from pocketstack.image.api.common import check_writable, manager, require_media_type, validate_attr
from pocketstack.image.api.data import activate
from pocketstack.image.data import Expectations, UploadError, ingest
from pocketstack.image.service import MAX_PROPERTIES, ImageManager, task_body
from pocketstack.image.store import Image, ImageTask, apply_attr, new_image
from pocketstack.image.stores import StoreError

log = logging.getLogger("pocketstack.image")

TASK_TYPES = ("import",)
TASK_STATUSES = ("pending", "processing", "success", "failure")
IMPORT_SCHEMES = ("http", "https")
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=300)
DEFAULT_LIMIT, MAX_LIMIT = 25, 1000


def _body(task: ImageTask) -> dict[str, Any]:
    return {**task_body(task), "self": f"/v2/tasks/{task.id}", "schema": "/v2/schemas/task"}


def _summary(task: ImageTask) -> dict[str, Any]:
    """A task in a list: without its input, result and message, as Glance lists them."""
    return {k: v for k, v in _body(task).items() if k not in ("input", "result", "message")}


def _import_input(raw: Any, ctx: RequestContext) -> tuple[str, Image]:
    """The URL and the (not yet stored) image of an import task's input."""
    if not isinstance(raw, dict):
        raise BadRequest("Invalid input: an import task's 'input' is an object.")
    for key in ("import_from", "import_from_format", "image_properties"):
        if key not in raw:
            raise BadRequest(f"Input does not contain '{key}' field")
    url, props = raw["import_from"], raw["image_properties"]
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in IMPORT_SCHEMES or not parts.hostname:
        raise BadRequest(f"Invalid import_from {url!r}: an {' or '.join(IMPORT_SCHEMES)} URL is required.")
    if not isinstance(props, dict):
        raise BadRequest("Invalid input: 'image_properties' is an object of image attributes.")
    image = new_image(str(uuid.uuid4()), ctx.project_id)
    for name, value in props.items():
        check_writable(name)
        apply_attr(image, name, validate_attr(name, value, ctx))
    if not image.disk_format or not image.container_format:
        raise BadRequest("Properties disk_format, container_format must be set in image_properties.")
    if raw["import_from_format"] != image.disk_format:
        raise BadRequest(f"import_from_format {raw['import_from_format']!r} differs from the image's disk_format "
                         f"{image.disk_format!r}; pocketstack does not convert image formats.")
    if len(image.properties) > MAX_PROPERTIES:
        raise BadRequest(f"An image may have at most {MAX_PROPERTIES} custom properties.")
    return url, image


async def create_task(request: Request) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    mgr.enforce("add_task", ctx)
    require_media_type(request, "application/json")
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object describing the task.")
    if body.get("type") not in TASK_TYPES:
        raise BadRequest(f"Invalid task type {body.get('type')!r}: one of {', '.join(TASK_TYPES)}.")
    url, image = _import_input(body.get("input"), ctx)
    mgr.enforce("add_image", ctx, image)
    if image.visibility == "public":
        mgr.enforce("publicize_image", ctx, image)
    now = utcnow()
    task = ImageTask(id=str(uuid.uuid4()), image_id=image.id, type="import", status="pending",
                     owner=ctx.project_id, user_id=ctx.user_id, request_id=ctx.request_id,
                     input=body["input"], result=None, message="", created_at=now, updated_at=now)
    await mgr.images.add(image, mgr.settings.image.quota_image_count, task)
    mgr.spawn(_run_import(mgr, task.id, image.id, url))
    return json_response(_body(task), status=201)


async def list_tasks(request: Request) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    mgr.enforce("get_tasks", ctx)
    params = request.query_params
    status, kind = params.get("status"), params.get("type")
    if status is not None and status not in TASK_STATUSES:
        raise BadRequest(f"Invalid status {status!r}: one of {', '.join(TASK_STATUSES)}.")
    sort_dir = params.get("sort_dir", "desc")
    if sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort direction {sort_dir!r}: asc or desc.")
    raw_limit = params.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit():
        raise BadRequest(f"Invalid limit {raw_limit!r}: a non-negative integer is required.")
    limit = min(int(raw_limit), MAX_LIMIT)
    rows = await mgr.images.task_page(ctx, status, kind, sort_dir, params.get("marker") or None, limit)
    page = rows[:limit]
    body: dict[str, Any] = {"tasks": [_summary(t) for t in page], "first": "/v2/tasks", "schema": "/v2/schemas/tasks"}
    if len(rows) > limit and page:
        kept = [(k, v) for k, v in params.multi_items() if k not in ("marker", "limit")]
        body["next"] = "/v2/tasks?" + urlencode([*kept, ("marker", page[-1].id), ("limit", str(limit))])
    return json_response(body)


async def show_task(request: Request, task_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    mgr.enforce("get_task", ctx)
    return json_response(_body(await mgr.images.task(ctx, task_id)))


async def _run_import(mgr: ImageManager, task_id: str, image_id: str, url: str) -> None:
    """Fetch the URL into the store (format checked and hashed as an upload), activate the image; a failure
    kills the image and fails the task with the reason."""
    def begin(image: Image | None) -> tuple[bool, str | None, str | None]:
        """(still there, owner, disk format to check)"""
        if image is None or image.status != "queued":
            return False, None, None
        image.status, image.updated_at = "saving", utcnow()
        return True, image.owner, image.disk_format if image.container_format == "bare" else None

    there, owner, disk_format = await mgr.images.transition(image_id, begin)
    await mgr.images.set_task(task_id, "processing")
    try:
        if not there:
            raise Conflict(f"Image {image_id} was deleted before its data was imported.")
        room, message = mgr.byte_room((await mgr.images.usage(owner))[1])
        expect = Expectations(disk_format=disk_format, limit=room, limit_message=message)
        async with http_session().get(url, timeout=FETCH_TIMEOUT) as resp:
            if resp.status != 200:
                raise UploadError(f"{url} answered {resp.status} {resp.reason}.")
            result = await ingest(resp.content.iter_chunked(1 << 20), mgr.store.writer(image_id), expect)
        await activate(mgr, image_id, "saving", result)
    except Exception as exc:  # whatever went wrong, the task says so (and the image does not stay saving)
        reason = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
        if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError | UploadError | StoreError | Conflict):
            log.warning("import task %s for image %s failed: %s", task_id, image_id, reason)
        else:
            log.exception("import task %s for image %s failed", task_id, image_id)

        def killed(image: Image | None) -> None:
            if image is not None and image.status == "saving":
                image.status, image.updated_at = "killed", utcnow()

        await mgr.images.transition(image_id, killed)
        await mgr.images.set_task(task_id, "failure", f"Import from {url} failed: {reason}")
        return
    await mgr.images.set_task(task_id, "success", result={"image_id": image_id})
