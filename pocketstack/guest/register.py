"""Register the test guest as a public image (what `pocketstack up` does once with the qemu driver).

DevStack uploads CirrOS on first start; pocketstack builds its own guest (`build.py`, cached) and uploads it as
the public image `pocketstack-guest`, through the image API like any user would. A newer build replaces the name:
older registrations are renamed `pocketstack-guest-<version>` and hidden, so servers using them keep working.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from pocketstack.common.clients.base import http_session
from pocketstack.common.clients.identity import IdentityClient
from pocketstack.common.clients.image import DATA_TIMEOUT, ImageClient
from pocketstack.common.errors import error_for_status
from pocketstack.common.service import stored_passwords
from pocketstack.guest.build import IMAGE_NAME, GuestImage, build_guest_image
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.guest")

PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


def guest_cache_dir(settings: Settings) -> Path:
    return settings.compute.guest_cache_dir or settings.data_dir / "guest"


async def _admin_token(settings: Settings) -> str:
    password = settings.identity.admin_password or stored_passwords(settings.data_dir).get("admin")
    if not password:
        raise RuntimeError("no admin password to register the guest image with")
    token, _ = await IdentityClient(settings.base_url("identity")).issue_token("admin", password, "admin")
    return token


async def _upload(client: ImageClient, image_id: str, path: Path, token: str) -> None:
    data = await asyncio.to_thread(open, path, "rb")  # aiohttp reads file payloads in a thread
    try:
        async with http_session().put(
                f"{client.base_url}/v2/images/{image_id}/file", data=data, timeout=DATA_TIMEOUT,
                headers=client.headers(token, {"Content-Type": "application/octet-stream"})) as resp:
            if resp.status != 204:
                raise error_for_status(resp.status, f"uploading the guest image failed: {await resp.text()}")
    finally:
        data.close()


async def register_guest_image(settings: Settings, image: GuestImage) -> dict[str, Any]:
    """The public image record of this guest build, uploaded (qcow2) unless already registered."""
    client = ImageClient(settings.base_url("image"))
    token = await _admin_token(settings)
    _, body, _ = await client.request("GET", "/v2/images", token=token,
                                      params={"name": IMAGE_NAME, "visibility": "public", "limit": 100})
    for record in body["images"]:
        if record.get("os_version") == image.version and record["status"] == "active":
            return record
    for record in body["images"]:  # an older build: keep it for its servers, free the name
        await client.request("PATCH", f"/v2/images/{record['id']}", token=token, headers={
            "Content-Type": PATCH_TYPE}, json=[
            {"op": "replace", "path": "/name", "value": f"{IMAGE_NAME}-{record.get('os_version', 'old')}"},
            {"op": "replace", "path": "/os_hidden", "value": True}])
    _, record, _ = await client.request("POST", "/v2/images", token=token, json={
        "name": IMAGE_NAME, "disk_format": "qcow2", "container_format": "bare", "visibility": "public",
        **image.properties})
    try:
        await _upload(client, record["id"], image.qcow2, token)
    except BaseException:
        await client.request("DELETE", f"/v2/images/{record['id']}", token=token, ok=(204, 404))
        raise
    log.info("registered the guest image %s as public image %s (%s)", image.version, IMAGE_NAME, record["id"])
    return await client.get_image(record["id"], token=token)


async def ensure_guest_image(settings: Settings) -> dict[str, Any]:
    """Build the guest once (cached in `compute.guest_cache_dir`, default DATA_DIR/guest) and register it as the
    public image `pocketstack-guest`.

    Call it once the identity and image services answer; it is idempotent and fast when nothing changed.
    """
    image = await asyncio.to_thread(build_guest_image, guest_cache_dir(settings), prune=True, log=log.info)
    return await register_guest_image(settings, image)


async def register_on_start(settings: Settings) -> None:
    """What a starting cloud does with the qemu driver (all-in-one and `up --distributed`): the test guest as the
    public image `pocketstack-guest`; a failure is logged, the cloud works without it."""
    if settings.compute.driver != "qemu" or not settings.compute.register_guest_image:
        return
    try:
        image = await ensure_guest_image(settings)
    except Exception as exc:  # say why it is missing
        log.error("the test guest image could not be built or registered: %s", exc)
        return
    log.info("public image %s (%s) is the test guest %s", image["name"], image["id"], image.get("os_version"))
