"""The images page: the list, and an upload that goes from the browser through the dashboard to the image
service as it arrives (a queued image made first, then its data streamed; an upload that fails deletes the
image it made, so nothing half-made is left). The page shows the upload's progress."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pocketstack.common.clients.image import ImageClient
from pocketstack.common.errors import APIError
from pocketstack.dashboard.session import UserSession
from pocketstack.dashboard.web import first, render

DISK_FORMATS = ("raw", "qcow2", "iso", "vmdk", "vdi", "vhd", "ami", "aki", "ari")
VISIBILITIES = ("private", "shared", "community", "public")


async def images(request: Request, session: UserSession) -> Response:
    found = (await session.call("image", "GET", "/v2/images"))["images"]
    return render("images.html", request, images=found, disk_formats=DISK_FORMATS, visibilities=VISIBILITIES)


async def create_image(request: Request, session: UserSession) -> Response:
    """The image record (queued); the page then sends its data to /images/{id}/data."""
    data = request.scope["dashboard_form"]
    name = first(data, "name").strip()
    if not name:
        return JSONResponse({"error": "The image needs a name."}, status_code=400)
    attrs = {"name": name, "disk_format": first(data, "disk_format", "raw"), "container_format": "bare",
             "visibility": first(data, "visibility", "private")}
    try:
        image = await session.call("image", "POST", "/v2/images", json=attrs)
    except APIError as exc:
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    return JSONResponse({"id": image["id"]}, status_code=201)


async def upload_image_data(request: Request, session: UserSession) -> Response:
    image_id = request.path_params["image_id"]
    url = session.url("image")
    if url is None:
        return JSONResponse({"error": "The catalog has no image service."}, status_code=503)
    client = ImageClient(url)

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            if chunk:
                yield chunk

    try:
        await client.upload_data(image_id, chunks(), token=session.token)
    except APIError as exc:
        try:  # the record made for this upload goes with it
            await client.delete_image(image_id, token=session.token)
        except APIError:
            pass
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    image = await client.get_image(image_id, token=session.token)
    return Response(json.dumps({"id": image_id, "status": image["status"], "size": image.get("size")}),
                    media_type="application/json")
