"""The image service's logic without HTTP: policy, quotas, the image body, data; its SQL is in `store.py`."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import Forbidden
from pocketstack.common.policy import PolicyEngine
from pocketstack.image.metadef_store import MetadefStore, Namespace
from pocketstack.image.policies import IMAGE_POLICIES
from pocketstack.image.store import Image, ImageMember, ImageStore, ImageTask
from pocketstack.image.stores import Store, StoreError, make_staging, make_store
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.image")

# Attributes Glance computes; a client may never set them.
READ_ONLY = ("id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size", "created_at",
             "updated_at", "file", "self", "schema", "direct_url", "locations", "stores")
RESERVED = ("location", "deleted", "deleted_at", "owner_id")
RESERVED_PREFIX = "os_glance"  # Glance keeps os_glance* properties for itself
VISIBILITIES = ("public", "private", "shared", "community")
MEMBER_STATUSES = ("pending", "accepted", "rejected")
IMPORT_METHODS = ("glance-direct",)
HASH_ALGO = "sha512"
MAX_TAGS = 128
MAX_PROPERTIES = 128



def isotime(dt: datetime | None) -> str | None:
    """Glance's timestamp format: 2026-01-01T00:00:00Z."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt is not None else None


def image_body(image: Image, store_id: str | None = None) -> dict[str, Any]:
    """An image as the v2 API shows it: core attributes, then custom properties at the top level; `stores`
    (Glance's multi-store attribute) names the store holding its data, when it has data."""
    body: dict[str, Any] = {prop.name: prop.value for prop in image.properties}
    body.update({
        "id": image.id, "name": image.name, "status": image.status, "visibility": image.visibility,
        "protected": image.protected, "os_hidden": image.os_hidden, "owner": image.owner,
        "disk_format": image.disk_format, "container_format": image.container_format, "size": image.size,
        "virtual_size": image.virtual_size, "checksum": image.checksum, "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value, "min_disk": image.min_disk, "min_ram": image.min_ram,
        "tags": sorted(t.value for t in image.tags), "created_at": isotime(image.created_at),
        "updated_at": isotime(image.updated_at), "self": f"/v2/images/{image.id}",
        "file": f"/v2/images/{image.id}/file", "schema": "/v2/schemas/image",
    })
    if image.location and store_id:
        body["stores"] = store_id
    return body


def task_body(task: ImageTask) -> dict[str, Any]:
    """A task as `GET /v2/images/{id}/tasks` shows it."""
    return {"id": task.id, "type": task.type, "status": task.status, "owner": task.owner,
            "user_id": task.user_id, "request_id": task.request_id, "image_id": task.image_id,
            "input": task.input, "result": task.result, "message": task.message,
            "expires_at": isotime(task.expires_at), "created_at": isotime(task.created_at),
            "updated_at": isotime(task.updated_at), "deleted_at": None, "deleted": False}


def member_body(member: ImageMember) -> dict[str, Any]:
    return {"image_id": member.image_id, "member_id": member.member, "status": member.status,
            "created_at": isotime(member.created_at), "updated_at": isotime(member.updated_at),
            "schema": "/v2/schemas/member"}


class ImageManager:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.images = ImageStore(db)
        self.metadefs = MetadefStore(db)
        self.policy = PolicyEngine(IMAGE_POLICIES, settings.policy_file)
        self.store: Store = make_store(settings)
        self.staging: Store = make_staging(settings)
        self.background: set[asyncio.Task[Any]] = set()

    # ----- policy and visibility ----------------------------------------------------------------------
    def enforce(self, action: str, ctx: RequestContext, image: Image | None = None,
                **extra: Any) -> None:
        target: dict[str, Any] = {}
        if image is not None:
            target = {"project_id": image.owner, "visibility": image.visibility, "image_id": image.id}
        target.update(extra)
        self.policy.enforce(action, ctx, target)

    def enforce_metadef(self, action: str, ctx: RequestContext, ns: Namespace | None = None) -> None:
        """A metadata definitions action; the target is the namespace (its owner, visibility, protection)."""
        target: dict[str, Any] = {}
        if ns is not None:
            target = {"project_id": ns.owner, "visibility": ns.visibility, "namespace": ns.namespace}
        self.policy.enforce(action, ctx, target)

    def require_owner(self, ctx: RequestContext, image: Image, what: str) -> None:
        """Members and community users may use an image, only its owner's project (or admin) changes it."""
        if not ctx.is_admin and image.owner != ctx.project_id:
            raise Forbidden(f"You are not permitted to {what} this image.")

    # ----- quotas --------------------------------------------------------------------------------------
    def byte_room(self, used_bytes: int) -> tuple[int, str]:
        """Most bytes an upload may add now, and the message shown when it goes over."""
        quota = self.settings.image.quota_image_bytes
        largest = self.settings.image.max_image_size
        if quota < 0 or quota - used_bytes >= largest:
            return largest, f"The image is larger than the largest allowed image ({largest} bytes)."
        return max(quota - used_bytes, 0), (
            f"Uploading this image would exceed the project's image storage quota of {quota} bytes "
            f"({used_bytes} in use).")

    # ----- data ----------------------------------------------------------------------------------------
    async def delete_data(self, location: str | None, staging_location: str | None = None) -> None:
        """Remove an image's stored and staged data (after the database no longer points at it)."""
        for store, loc in ((self.store, location), (self.staging, staging_location)):
            if loc:
                try:
                    await store.delete(loc)
                except StoreError:
                    log.exception("could not delete image data at %s", loc)

    async def recover(self) -> None:
        """After a crash: uploads in flight never completed (their partial files are gone), imports restart
        from their staged data."""
        for image in await self.images.reset_interrupted():
            log.warning("image %s: interrupted upload or import, status reset to %s", image.id, image.status)

    def spawn(self, coro: Any) -> None:
        """Run background work (an import) and keep a reference until it ends."""
        task = asyncio.create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def stop(self) -> None:
        for task in list(self.background):
            task.cancel()
        if self.background:
            await asyncio.gather(*self.background, return_exceptions=True)
