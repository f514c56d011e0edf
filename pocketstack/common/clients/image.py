"""Client of the image service: image metadata and streamed image data (FLOW.md steps 20-22), and creating
images from data other services hold (a volume uploaded as an image)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from pocketstack.common.clients.base import ServiceClient, http_session
from pocketstack.common.errors import Conflict, ServiceUnavailable, error_for_status

# Reads may take long for big images; only a stalled socket is an error.
DATA_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


class ImageClient(ServiceClient):
    def __init__(self, base_url: str) -> None:
        super().__init__(base_url, "image")

    async def get_image(self, image_id: str, *, token: str | None = None) -> dict[str, Any]:
        """`GET /v2/images/{id}`: the image record (status, disk_format, size, checksums, properties)."""
        _, body, _ = await self.request("GET", f"/v2/images/{image_id}", token=token)
        return body

    async def create_image(self, *, token: str | None = None, **attrs: Any) -> dict[str, Any]:
        """`POST /v2/images`: a queued image record with these attributes and properties."""
        _, body, _ = await self.request("POST", "/v2/images", token=token, json=attrs)
        return body

    async def update_image(self, image_id: str, *, token: str | None = None, **attrs: Any) -> dict[str, Any]:
        """`PATCH /v2/images/{id}`: set these attributes and properties (JSON patch `add`, which also replaces)."""
        ops = [{"op": "add", "path": f"/{name}", "value": value} for name, value in attrs.items()]
        _, body, _ = await self.request("PATCH", f"/v2/images/{image_id}", token=token, json=ops,
                                        headers={"Content-Type": PATCH_TYPE})
        return body

    async def list_images(self, *, token: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        """`GET /v2/images` with these filters (properties too, as Glance filters on them), every page."""
        params = {k: str(v) for k, v in filters.items()}
        images: list[dict[str, Any]] = []
        while True:
            _, body, _ = await self.request("GET", "/v2/images", token=token, params=params)
            images.extend(body["images"])
            if not body.get("next") or not body["images"]:
                return images
            params["marker"] = body["images"][-1]["id"]

    async def delete_image(self, image_id: str, *, token: str | None = None) -> None:
        await self.request("DELETE", f"/v2/images/{image_id}", token=token)

    async def upload(self, image_id: str, source: Path, *, token: str | None = None) -> None:
        """`PUT /v2/images/{id}/file`: stream a file as the image's data (read off the event loop)."""
        data = await asyncio.to_thread(open, source, "rb")  # aiohttp reads file payloads in its executor
        try:
            await self.upload_data(image_id, data, token=token)
        finally:
            await asyncio.to_thread(data.close)

    async def upload_data(self, image_id: str, data: Any, *, token: str | None = None) -> None:
        """`PUT /v2/images/{id}/file` with `data` as the body: an open file, or an async iterator of chunks (a
        browser's upload passed through as it arrives), streamed without holding it in memory."""
        try:
            async with http_session().put(
                    f"{self.base_url}/v2/images/{image_id}/file", data=data, timeout=DATA_TIMEOUT,
                    headers=self.headers(token, {"Content-Type": "application/octet-stream"})) as resp:
                if resp.status not in (200, 204):
                    raise error_for_status(resp.status, _page_message(await resp.read(), resp.status))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServiceUnavailable(f"Uploading image {image_id} failed: {exc.__class__.__name__}") from exc

    async def download(self, image_id: str, dest: Path, *, token: str | None = None,
                       image: dict[str, Any] | None = None, chunk_size: int = 1 << 20) -> dict[str, Any]:
        """Stream an active image's data into `dest` (temp file + rename), verifying size and sha512/md5.

        `image`: its record when the caller already read it (a boot reads it at step 20), else it is read here.
        Returns the image record the data was checked against. Nothing is left at `dest` on failure.
        """
        if image is None or image.get("id") != image_id:
            image = await self.get_image(image_id, token=token)
        if image.get("status") != "active":
            raise Conflict(f"Image {image_id} is {image.get('status')}, not active; it has no data to fetch.")
        algo = image.get("os_hash_algo")
        hasher = hashlib.new(algo) if algo and image.get("os_hash_value") else None
        md5 = hashlib.md5(usedforsecurity=False)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        out = await asyncio.to_thread(open, tmp, "wb")
        size = 0
        try:
            async with http_session().get(
                    f"{self.base_url}/v2/images/{image_id}/file", timeout=DATA_TIMEOUT,
                    headers=self.headers(token, {"Accept": "application/octet-stream"})) as resp:
                if resp.status != 200:
                    raise error_for_status(resp.status, _page_message(await resp.read(), resp.status))
                async for chunk in resp.content.iter_chunked(chunk_size):
                    size += len(chunk)
                    md5.update(chunk)
                    if hasher is not None:
                        hasher.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
            await asyncio.to_thread(_flush_and_close, out)
            if image.get("size") is not None and size != image["size"]:
                raise ServiceUnavailable(f"Image {image_id}: got {size} bytes, expected {image['size']}.")
            if hasher is not None and hasher.hexdigest() != image["os_hash_value"]:
                raise ServiceUnavailable(f"Image {image_id}: the data does not match its {algo} hash.")
            if hasher is None and image.get("checksum") and md5.hexdigest() != image["checksum"]:
                raise ServiceUnavailable(f"Image {image_id}: the data does not match its checksum.")
            os.replace(tmp, dest)
        except BaseException as exc:
            out.close()
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, aiohttp.ClientError | TimeoutError):
                raise ServiceUnavailable(f"Fetching image {image_id} failed: {exc.__class__.__name__}") from exc
            raise
        return image


def _page_message(raw: bytes, status: int) -> str:
    """The message of Glance's HTML error page (its lines without tags, minus the title)."""
    lines = [re.sub(r"<.+?>", "", line).strip() for line in raw.decode(errors="replace").splitlines()]
    text = [line for line in lines if line and not line.startswith(str(status))]
    return " ".join(text) or f"image answered {status}"


def _flush_and_close(out: Any) -> None:
    out.flush()
    os.fsync(out.fileno())
    out.close()
