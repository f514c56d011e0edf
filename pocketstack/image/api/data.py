"""Image data: upload (`PUT .../file`), download with Range (`GET .../file`), and the glance-direct import
(`PUT .../stage`, `POST .../import`) with the task recording each import (`GET .../tasks`)."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid

from fastapi import Request, Response
from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse

from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    ServiceUnavailable,
    error_for_status,
)
from pocketstack.common.timeutils import utcnow
from pocketstack.image.api.common import manager, require_media_type
from pocketstack.image.data import Expectations, IngestResult, UploadError, ingest
from pocketstack.image.service import HASH_ALGO, IMPORT_METHODS, ImageManager, task_body
from pocketstack.image.store import Image, ImageTask
from pocketstack.image.stores import Store, StoreError

log = logging.getLogger("pocketstack.image")

# Properties openstacksdk sets from the checksums the caller computed; an upload must match them.
SDK_MD5_KEY = "owner_specified.openstack.md5"
SDK_SHA256_KEY = "owner_specified.openstack.sha256"
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _declared_size(request: Request) -> int | None:
    raw = request.headers.get("x-openstack-image-size")
    if raw is None and "chunked" not in request.headers.get("transfer-encoding", "").lower():
        raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        size = int(raw)
    except ValueError:
        raise BadRequest(f"Invalid image size {raw!r}: an integer number of bytes is required.")
    if size < 0:
        raise BadRequest("The image size must not be negative.")
    return size


async def _begin(mgr: ImageManager, ctx: RequestContext, image_id: str, action: str,
                 transient: str, declared: int | None) -> Expectations:
    """Move a queued image to `transient` (saving/uploading) and say what its data must be."""

    def begin(image: Image, used: int) -> Expectations:
        mgr.enforce(action, ctx, image)
        mgr.require_owner(ctx, image, "upload data to")
        if image.status != "queued":
            raise Conflict(f"Image status transition from {image.status} to {transient} is not allowed.")
        if not image.disk_format or not image.container_format:
            raise BadRequest("Properties disk_format, container_format must be set prior to saving data.")
        room, message = mgr.byte_room(used)
        if declared is not None and declared > room:
            raise PayloadTooLarge(message)
        props = {p.name: p.value for p in image.properties}
        image.status = transient
        image.updated_at = utcnow()
        return Expectations(
            disk_format=image.disk_format if image.container_format == "bare" else None, size=declared,
            md5=props.get(SDK_MD5_KEY) or None, sha256=props.get(SDK_SHA256_KEY) or None, limit=room,
            limit_message=message)

    return await mgr.images.change_with_usage(ctx, image_id, begin)


async def _fail(mgr: ImageManager, image_id: str, transient: str, status: str) -> None:
    """Put an image whose data did not arrive back to `status` (queued: retry; killed: store failure)."""
    def back(image: Image | None) -> None:
        if image is not None and image.status == transient:
            image.status = status
            image.updated_at = utcnow()

    await mgr.images.transition(image_id, back)


async def _receive(mgr: ImageManager, request: Request, store: Store, image_id: str, transient: str,
                   expect: Expectations) -> IngestResult:
    """Stream the body into `store`; on any failure the image goes back to queued (or killed)."""
    try:
        return await ingest(request.stream(), store.writer(image_id), expect)
    except BaseException as exc:
        status = "killed" if isinstance(exc, StoreError) else "queued"
        await asyncio.shield(_fail(mgr, image_id, transient, status))
        if isinstance(exc, UploadError):
            raise error_for_status(exc.status, exc.message)
        if isinstance(exc, ClientDisconnect):
            log.warning("upload of image %s cut by the client; nothing was stored", image_id)
            raise BadRequest("The client disconnected before the image data was complete.")
        if isinstance(exc, StoreError):
            log.error("storing data of image %s failed: %s", image_id, exc)
            raise ServiceUnavailable(f"The image store failed: {exc}")
        raise


async def upload(request: Request, image_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    require_media_type(request, "application/octet-stream")
    expect = await _begin(mgr, ctx, image_id, "upload_image", "saving", _declared_size(request))
    result = await _receive(mgr, request, mgr.store, image_id, "saving", expect)
    await activate(mgr, image_id, "saving", result)
    return Response(status_code=204)


async def activate(mgr: ImageManager, image_id: str, transient: str, result: IngestResult) -> None:
    """Record stored data and make the image active, unless it was deleted meanwhile (then drop the data)."""

    def activate(image: Image | None) -> tuple[bool, str | None]:
        """(gone, the location of the data this replaces)"""
        if image is None or image.status != transient:
            return True, None
        old = image.location if image.location != result.location else None
        image.location, image.size, image.virtual_size = result.location, result.size, result.virtual_size
        image.checksum, image.os_hash_algo, image.os_hash_value = result.md5, HASH_ALGO, result.sha512
        image.status, image.updated_at = "active", utcnow()
        return False, old

    gone, old_location = await mgr.images.transition(image_id, activate)
    if gone:
        await mgr.delete_data(result.location)
        raise Conflict(f"Image {image_id} was deleted or changed state while its data was uploaded.")
    if old_location:
        await mgr.delete_data(old_location)


# ----- download ------------------------------------------------------------------------------------------
def _parse_range(header: str, size: int) -> tuple[int, int]:
    """One `bytes=a-b` range as [start, end); 416 for anything unsatisfiable or multi-range."""
    match = RANGE_RE.match(header.strip().replace(" ", ""))
    if not match or match.groups() == ("", ""):
        raise RangeNotSatisfiable(f"Invalid or unsupported Range {header!r}: one bytes range is supported.",
                                  headers={"Content-Range": f"bytes */{size}"})
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size
    else:
        start = int(first)
        end = size if last == "" else min(int(last) + 1, size)
    if start >= size or start >= end:
        raise RangeNotSatisfiable(f"Range {header!r} is outside the {size} bytes of the image.",
                                  headers={"Content-Range": f"bytes */{size}"})
    return start, end


async def download(request: Request, image_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    image = await mgr.images.get(ctx, image_id)
    mgr.enforce("download_image", ctx, image)
    if image.status == "deactivated" and not ctx.is_admin:
        raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
    if not image.location or image.status not in ("active", "deactivated"):
        return Response(status_code=204)
    try:
        size = await mgr.store.size(image.location)
    except StoreError:
        raise NotFound(f"Image data of {image_id} is not available.")
    headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
    start, end, status = 0, size, 200
    range_header = request.headers.get("range")
    if range_header:
        start, end = _parse_range(range_header, size)
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    elif image.checksum:
        headers["Content-MD5"] = image.checksum
    headers["Content-Length"] = str(end - start)
    return StreamingResponse(mgr.store.read(image.location, start, end), status_code=status, headers=headers)


# ----- interoperable import (glance-direct) -------------------------------------------------------------
async def stage(request: Request, image_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    require_media_type(request, "application/octet-stream")
    expect = await _begin(mgr, ctx, image_id, "stage_image", "uploading", _declared_size(request))
    result = await _receive(mgr, request, mgr.staging, image_id, "uploading", expect)

    def staged(image: Image | None) -> bool:
        if image is None or image.status != "uploading":
            return False
        image.staging_location, image.updated_at = result.location, utcnow()
        return True

    if not await mgr.images.transition(image_id, staged):
        await mgr.delete_data(None, result.location)
        raise Conflict(f"Image {image_id} was deleted while its data was staged.")
    return Response(status_code=204)


async def import_image(request: Request, image_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    body = await json_body(request)
    method = body.get("method") if isinstance(body, dict) else None
    name = method.get("name") if isinstance(method, dict) else None
    if name not in IMPORT_METHODS:
        raise BadRequest(f"Import method {name!r} is not supported; available: {', '.join(IMPORT_METHODS)}.")
    stores = body.get("stores")
    if stores is not None and (not isinstance(stores, list) or any(s != mgr.store.id for s in stores)):
        raise BadRequest(f"Unknown store in {stores!r}; the only store is {mgr.store.id!r}.")

    task_id = str(uuid.uuid4())

    def importing(image: Image) -> tuple[str, Expectations]:
        mgr.enforce("import_image", ctx, image)
        mgr.require_owner(ctx, image, "import data to")
        if image.status != "uploading" or not image.staging_location:
            raise Conflict(f"Image {image_id} has no staged data to import (status {image.status}); "
                           "stage it first with PUT /v2/images/{id}/stage.")
        now = utcnow()
        image.status, image.updated_at = "importing", now
        image.tasks.add(ImageTask(  # the import's record, as Glance's api_image_import task
            id=task_id, type="api_image_import", status="processing", owner=image.owner, user_id=ctx.user_id,
            request_id=ctx.request_id, input={"image_id": image_id, "import_req": body,
                                              "backend": [mgr.store.id]},
            result=None, message="", created_at=now, updated_at=now))
        return image.staging_location, Expectations(
            disk_format=image.disk_format if image.container_format == "bare" else None)

    staged, expect = await mgr.images.change(ctx, image_id, importing)
    mgr.spawn(_run_import(mgr, image_id, task_id, staged, expect))
    return Response(status_code=202)


async def _run_import(mgr: ImageManager, image_id: str, task_id: str, staged: str, expect: Expectations) -> None:
    """Copy the staged data into the store (hashing it again), activate the image, drop the staged copy; the
    task records how it ended."""
    try:
        result = await ingest(mgr.staging.read(staged), mgr.store.writer(image_id), expect)
    except Exception as exc:
        log.error("import of image %s failed: %s", image_id, exc)
        await mgr.images.transition(image_id, _import_failed)
        await mgr.images.set_task(task_id, "failure", f"Import failed: {exc}")
        await mgr.delete_data(None, staged)
        return
    try:
        await activate(mgr, image_id, "importing", result)
        await mgr.images.transition(image_id, _unstaged)
        await mgr.images.set_task(task_id, "success", result={"image_id": image_id})
    except Conflict as exc:
        await mgr.images.set_task(task_id, "failure", exc.message)
    await mgr.delete_data(None, staged)


async def image_tasks(request: Request, image_id: str) -> Response:
    """The tasks run on an image (its imports), `GET /v2/images/{id}/tasks` (Image API 2.12)."""
    ctx = request_context(request)
    mgr = manager(request)
    tasks = await mgr.images.tasks(ctx, image_id, lambda image: mgr.enforce("get_image", ctx, image))
    return json_response({"tasks": [task_body(t) for t in tasks]})


def _import_failed(image: Image | None) -> None:
    if image is not None and image.status == "importing":
        image.status, image.staging_location, image.updated_at = "queued", None, utcnow()


def _unstaged(image: Image | None) -> None:
    if image is not None:
        image.staging_location = None
