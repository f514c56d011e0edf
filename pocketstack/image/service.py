"""The image service's logic without HTTP: visibility rules, quotas, the image body, state changes of data."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import Forbidden, NotFound
from pocketstack.common.policy import PolicyEngine
from pocketstack.common.timeutils import utcnow
from pocketstack.image import models as m
from pocketstack.image.policies import IMAGE_POLICIES
from pocketstack.image.stores import Store, StoreError, make_staging, make_store
from pocketstack.settings import Settings

log = logging.getLogger("pocketstack.image")

# Attributes Glance computes; a client may never set them.
READ_ONLY = ("id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size", "created_at",
             "updated_at", "file", "self", "schema", "direct_url", "locations", "stores")
RESERVED = ("location", "deleted", "deleted_at", "owner_id")
CORE = ("name", "visibility", "protected", "os_hidden", "owner", "disk_format", "container_format", "min_disk",
        "min_ram", "tags")
VISIBILITIES = ("public", "private", "shared", "community")
MEMBER_STATUSES = ("pending", "accepted", "rejected")
IMPORT_METHODS = ("glance-direct",)
HASH_ALGO = "sha512"
MAX_TAGS = 128
MAX_PROPERTIES = 128



def isotime(dt: datetime | None) -> str | None:
    """Glance's timestamp format: 2026-01-01T00:00:00Z."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt is not None else None


def valid_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def image_body(image: m.Image) -> dict[str, Any]:
    """An image as the v2 API shows it: core attributes, then custom properties at the top level."""
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
    return body


def member_body(member: m.ImageMember) -> dict[str, Any]:
    return {"image_id": member.image_id, "member_id": member.member, "status": member.status,
            "created_at": isotime(member.created_at), "updated_at": isotime(member.updated_at),
            "schema": "/v2/schemas/member"}


class ImageManager:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.policy = PolicyEngine(IMAGE_POLICIES, settings.policy_file)
        self.store: Store = make_store(settings)
        self.staging: Store = make_staging(settings)
        self.background: set[asyncio.Task[Any]] = set()

    # ----- policy and visibility ----------------------------------------------------------------------
    def enforce(self, action: str, ctx: RequestContext, image: m.Image | None = None,
                **extra: Any) -> None:
        target: dict[str, Any] = {}
        if image is not None:
            target = {"project_id": image.owner, "visibility": image.visibility, "image_id": image.id}
        target.update(extra)
        self.policy.enforce(action, ctx, target)

    def visible_clause(self, ctx: RequestContext, member_status: str = "accepted",
                       community: bool = False) -> ColumnElement[bool]:
        """Which images a caller's list shows: own, public, shared with it (by member status), community."""
        if ctx.is_admin:
            return true()
        members = select(m.ImageMember.image_id).where(m.ImageMember.member == ctx.project_id)
        if member_status != "all":
            members = members.where(m.ImageMember.status == member_status)
        return or_(m.Image.owner == ctx.project_id, m.Image.visibility == "public",
                   and_(m.Image.visibility == "shared", m.Image.id.in_(members)),
                   m.Image.visibility == "community" if community else false())

    @staticmethod
    def can_see(session: Session, ctx: RequestContext, image: m.Image) -> bool:
        """Whether a caller may see one image: members see a shared image whatever their member status.

        Synchronous, as `get_image`: async callers use `session.run_sync`."""
        if ctx.is_admin or image.owner == ctx.project_id or image.visibility in ("public", "community"):
            return True
        if image.visibility != "shared" or ctx.project_id is None:
            return False
        return session.get(m.ImageMember, (image.id, ctx.project_id)) is not None

    def get_image(self, session: Session, ctx: RequestContext, image_id: str) -> m.Image:
        """A live image the caller may see, or 404 (not 403: others' private images do not exist for it)."""
        image = session.get(m.Image, image_id, options=m.IMAGE_LOAD) if valid_uuid(image_id) else None
        if image is None or image.deleted or not self.can_see(session, ctx, image):
            raise NotFound(f"No image found with ID {image_id}")
        return image

    def require_owner(self, ctx: RequestContext, image: m.Image, what: str) -> None:
        """Members and community users may use an image, only its owner's project (or admin) changes it."""
        if not ctx.is_admin and image.owner != ctx.project_id:
            raise Forbidden(f"You are not permitted to {what} this image.")

    # ----- quotas --------------------------------------------------------------------------------------
    async def usage(self, session: AsyncSession, project_id: str | None) -> tuple[int, int]:
        """(images, bytes of image data) a project owns."""
        row = (await session.execute(
            select(func.count(m.Image.id), func.coalesce(func.sum(m.Image.size), 0))
            .where(m.Image.owner == project_id, m.Image.deleted.is_(False)))).one()
        return int(row[0]), int(row[1])

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
        async with self.db.session(write=True) as session:
            rows = (await session.execute(select(m.Image).where(
                m.Image.status.in_(("saving", "uploading", "importing")), m.Image.deleted.is_(False)))).scalars()
            for image in rows:
                staged = image.status == "importing" and image.staging_location
                image.status = "uploading" if staged else "queued"
                if not staged:
                    image.staging_location = None
                image.updated_at = utcnow()
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
