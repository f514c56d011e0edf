"""All of the image service's SQL: image records, their tags and properties, members, quotas' usage, and the
image list's filters and keyset pages. (`image/stores/` is something else: the backends holding image data.)

Every method is one `Database.run` transaction. Writes that depend on policy or on the record's state take a
callback that runs inside the transaction on the loaded record: raising there rolls the whole change back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from pocketstack.common.timeutils import utcnow
from pocketstack.image import models as m

T = TypeVar("T")


def valid_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True

# The row types handlers and views see (typed without importing the models).
Image = m.Image
ImageMember = m.ImageMember
ImageTask = m.ImageTask

CORE = ("name", "visibility", "protected", "os_hidden", "owner", "disk_format", "container_format", "min_disk",
        "min_ram", "tags")
TIME_OPERATORS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__", "eq": "__eq__",
                  "neq": "__ne__"}
IN_FILTERS = ("id", "name", "status", "disk_format", "container_format")


@dataclass
class ImageQuery:
    """A parsed image list request: filters, sort order, page."""

    visibility: str | None = None
    member_status: str = "accepted"
    matches: dict[str, str] = field(default_factory=dict)  # IN_FILTERS: value or `in:"a","b"`
    owner: str | None = None
    tags: list[str] = field(default_factory=list)
    size_min: int | None = None
    size_max: int | None = None
    times: list[tuple[str, str]] = field(default_factory=list)  # (created_at|updated_at, "gte:ISO")
    os_hidden: bool = False
    protected: bool | None = None
    properties: list[tuple[str, str]] = field(default_factory=list)  # custom property filters
    sorting: list[tuple[str, str]] = field(default_factory=list)
    marker: str | None = None
    limit: int = 25


def new_image(image_id: str, owner: str | None) -> m.Image:
    """A queued image record, not yet stored."""
    now = utcnow()
    return m.Image(id=image_id, name=None, status="queued", visibility="shared", protected=False, os_hidden=False,
                   owner=owner, min_disk=0, min_ram=0, created_at=now, updated_at=now, deleted=False,
                   properties=[], tags=[])


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


def tag_image(image: m.Image, tag: str, most: int) -> None:
    if all(t.value != tag for t in image.tags):
        if len(image.tags) >= most:
            raise PayloadTooLarge(f"An image may have at most {most} tags.")
        image.tags.append(m.ImageTag(value=tag))
        image.updated_at = utcnow()


def untag_image(image: m.Image, tag: str) -> None:
    existing = next((t for t in image.tags if t.value == tag), None)
    if existing is None:
        raise NotFound(f"Tag {tag} not found on image {image.id}.")
    image.tags.remove(existing)
    image.updated_at = utcnow()


def _usage(session: Session, project_id: str | None) -> tuple[int, int]:
    row = session.execute(select(func.count(m.Image.id), func.coalesce(func.sum(m.Image.size), 0)).where(
        m.Image.owner == project_id, m.Image.deleted.is_(False))).one()
    return int(row[0]), int(row[1])


def _can_see(session: Session, ctx: RequestContext, image: m.Image) -> bool:
    """Members see a shared image whatever their member status."""
    if ctx.is_admin or image.owner == ctx.project_id or image.visibility in ("public", "community"):
        return True
    if image.visibility != "shared" or ctx.project_id is None:
        return False
    return session.get(m.ImageMember, (image.id, ctx.project_id)) is not None


def _visible(session: Session, ctx: RequestContext, image_id: str) -> m.Image:
    """A live image the caller may see, or 404 (not 403: others' private images do not exist for it)."""
    image = session.get(m.Image, image_id, options=m.IMAGE_LOAD) if valid_uuid(image_id) else None
    if image is None or image.deleted or not _can_see(session, ctx, image):
        raise NotFound(f"No image found with ID {image_id}")
    return image


def _visible_clause(ctx: RequestContext, member_status: str, community: bool) -> ColumnElement[bool]:
    """Which images a caller's list shows: own, public, shared with it (by member status), community."""
    if ctx.is_admin:
        return true()
    members = select(m.ImageMember.image_id).where(m.ImageMember.member == ctx.project_id)
    if member_status != "all":
        members = members.where(m.ImageMember.status == member_status)
    return or_(m.Image.owner == ctx.project_id, m.Image.visibility == "public",
               and_(m.Image.visibility == "shared", m.Image.id.in_(members)),
               m.Image.visibility == "community" if community else false())


def _match(column: Any, raw: str) -> Any:
    """`value` or Glance's `in:"a","b"` operator."""
    if raw.startswith("in:"):
        return column.in_([v.strip().strip('"') for v in raw[3:].split(",") if v.strip()])
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


def _filtered(ctx: RequestContext, q: ImageQuery) -> Select[Any]:
    query = select(m.Image).where(m.Image.deleted.is_(False), _visible_clause(
        ctx, q.member_status, community=q.visibility in ("community", "all")))
    if q.visibility not in (None, "all"):
        query = query.where(m.Image.visibility == q.visibility)
    for name, raw in q.matches.items():
        query = query.where(_match(getattr(m.Image, name), raw))
    if q.owner is not None:
        query = query.where(m.Image.owner == q.owner)
    for tag in q.tags:
        query = query.where(m.Image.id.in_(select(m.ImageTag.image_id).where(m.ImageTag.value == tag)))
    if q.size_min is not None:
        query = query.where(m.Image.size >= q.size_min)
    if q.size_max is not None:
        query = query.where(m.Image.size <= q.size_max)
    for name, raw in q.times:
        query = query.where(_time_filter(getattr(m.Image, name), name, raw))
    query = query.where(m.Image.os_hidden.is_(q.os_hidden))
    if q.protected is not None:
        query = query.where(m.Image.protected.is_(q.protected))
    for name, value in q.properties:
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


class ImageStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ----- images ----------------------------------------------------------------------------------------
    async def get(self, ctx: RequestContext, image_id: str) -> m.Image:
        return await self.db.run(lambda s: _visible(s, ctx, image_id), write=False)

    async def page(self, ctx: RequestContext, q: ImageQuery) -> list[m.Image]:
        """Up to `limit + 1` images of the list (one more than the page tells whether there is a next)."""
        def read(session: Session) -> list[m.Image]:
            query = _filtered(ctx, q)
            if q.marker:
                marker = session.get(m.Image, q.marker) if valid_uuid(q.marker) else None
                if marker is None or marker.deleted or not _can_see(session, ctx, marker):
                    raise BadRequest(f"Invalid marker. Image {q.marker} could not be found.")
                query = query.where(_after_marker(marker, q.sorting))
            return list(session.scalars(query.order_by(*_order(q.sorting)).limit(q.limit + 1)))

        return await self.db.run(read, write=False)

    async def add(self, image: m.Image, quota: int, task: m.ImageTask | None = None) -> None:
        """Store a new image (and the task that makes it) unless its id is taken or the owner's image count
        quota is reached."""
        def write(session: Session) -> None:
            if session.get(m.Image, image.id) is not None:
                raise Conflict(f"An image with identifier {image.id} already exists.")
            if 0 <= quota <= _usage(session, image.owner)[0]:
                raise PayloadTooLarge(f"The project's quota of {quota} images is reached.")
            session.add(image)
            if task is not None:
                session.add(task)

        await self.db.run(write, write=True)

    async def change(self, ctx: RequestContext, image_id: str, change: Callable[[m.Image], T]) -> T:
        """Apply `change` to an image the caller may see, in one write transaction."""
        return await self.db.run(lambda s: change(_visible(s, ctx, image_id)), write=True)

    async def change_with_usage(self, ctx: RequestContext, image_id: str,
                                change: Callable[[m.Image, int], T]) -> T:
        """`change` that also gets the bytes of image data the image's owner holds (the storage quota)."""
        def write(session: Session) -> T:
            image = _visible(session, ctx, image_id)
            return change(image, _usage(session, image.owner)[1])

        return await self.db.run(write, write=True)

    async def transition(self, image_id: str, change: Callable[[m.Image | None], T]) -> T:
        """The service's own state change of an image (data arrived, upload failed), whoever may see it."""
        return await self.db.run(lambda s: change(s.get(m.Image, image_id)), write=True)

    async def usage(self, project_id: str | None) -> tuple[int, int]:
        """(images, bytes of image data) a project owns."""
        return await self.db.run(lambda s: _usage(s, project_id), write=False)

    async def reset_interrupted(self) -> list[m.Image]:
        """After a crash: uploads in flight go back to queued, imports to uploading with their staged data."""
        def write(session: Session) -> list[m.Image]:
            rows = list(session.scalars(select(m.Image).where(
                m.Image.status.in_(("saving", "uploading", "importing")), m.Image.deleted.is_(False))))
            now = utcnow()
            for task in session.scalars(select(m.ImageTask).where(m.ImageTask.status.in_(("pending", "processing")))):
                task.status, task.message, task.updated_at = "failure", "Interrupted by a restart of the service.", now
            for image in rows:
                staged = image.status == "importing" and image.staging_location
                image.status = "uploading" if staged else "queued"
                if not staged:
                    image.staging_location = None
                image.updated_at = utcnow()
            return rows

        return await self.db.run(write, write=True)

    # ----- tasks -----------------------------------------------------------------------------------------
    async def tasks(self, ctx: RequestContext, image_id: str, check: Callable[[m.Image], None]) -> list[m.ImageTask]:
        """The tasks of an image the caller may see, oldest first."""
        def read(session: Session) -> list[m.ImageTask]:
            check(_visible(session, ctx, image_id))
            return list(session.scalars(select(m.ImageTask).where(m.ImageTask.image_id == image_id).order_by(
                m.ImageTask.created_at, m.ImageTask.id)))

        return await self.db.run(read, write=False)

    async def task(self, ctx: RequestContext, task_id: str) -> m.ImageTask:
        """A task of the caller's project (any, for admin), or 404."""
        def read(session: Session) -> m.ImageTask:
            task = session.get(m.ImageTask, task_id)
            if task is None or not (ctx.is_admin or task.owner == ctx.project_id):
                raise NotFound(f"Task with the given ID {task_id} could not be found")
            return task

        return await self.db.run(read, write=False)

    async def task_page(self, ctx: RequestContext, status: str | None, kind: str | None, sort_dir: str,
                        marker: str | None, limit: int) -> list[m.ImageTask]:
        """Up to `limit + 1` of the caller's tasks (all, for admin), newest first unless `sort_dir` is asc."""
        def read(session: Session) -> list[m.ImageTask]:
            query = select(m.ImageTask)
            if not ctx.is_admin:
                query = query.where(m.ImageTask.owner == ctx.project_id)
            if status is not None:
                query = query.where(m.ImageTask.status == status)
            if kind is not None:
                query = query.where(m.ImageTask.type == kind)
            keys = (m.ImageTask.created_at, m.ImageTask.id)
            if marker is not None:
                at = session.get(m.ImageTask, marker)
                if at is None or not (ctx.is_admin or at.owner == ctx.project_id):
                    raise BadRequest(f"Invalid marker. Task {marker} could not be found.")
                after = or_(keys[0] > at.created_at, and_(keys[0] == at.created_at, keys[1] > at.id))
                before = or_(keys[0] < at.created_at, and_(keys[0] == at.created_at, keys[1] < at.id))
                query = query.where(after if sort_dir == "asc" else before)
            order = [k.asc() for k in keys] if sort_dir == "asc" else [k.desc() for k in keys]
            return list(session.scalars(query.order_by(*order).limit(limit + 1)))

        return await self.db.run(read, write=False)

    async def set_task(self, task_id: str, status: str, message: str = "",
                       result: dict[str, Any] | None = None) -> None:
        """The service's own progress of a task (processing, success, failure)."""
        def write(session: Session) -> None:
            task = session.get(m.ImageTask, task_id)
            if task is not None:
                task.status, task.message, task.result, task.updated_at = status, message, result, utcnow()

        await self.db.run(write, write=True)

    # ----- members ---------------------------------------------------------------------------------------
    async def add_member(self, ctx: RequestContext, image_id: str, member_id: str,
                         check: Callable[[m.Image], None]) -> m.ImageMember:
        def write(session: Session) -> m.ImageMember:
            check(_visible(session, ctx, image_id))
            if session.get(m.ImageMember, (image_id, member_id)) is not None:
                raise Conflict(f"Project {member_id} is already a member of image {image_id}.")
            now = utcnow()
            member = m.ImageMember(image_id=image_id, member=member_id, status="pending", created_at=now,
                                   updated_at=now)
            session.add(member)
            return member

        return await self.db.run(write, write=True)

    async def members(self, ctx: RequestContext, image_id: str,
                      check: Callable[[m.Image], None]) -> list[m.ImageMember]:
        """The image's members; a member that is not the owner sees only itself."""
        def read(session: Session) -> list[m.ImageMember]:
            image = _visible(session, ctx, image_id)
            check(image)
            query = select(m.ImageMember).where(m.ImageMember.image_id == image_id).order_by(
                m.ImageMember.created_at)
            if not ctx.is_admin and image.owner != ctx.project_id:
                query = query.where(m.ImageMember.member == ctx.project_id)
            return list(session.scalars(query))

        return await self.db.run(read, write=False)

    async def member(self, ctx: RequestContext, image_id: str, member_id: str,
                     change: Callable[[m.Image, m.ImageMember | None], T], *, write: bool) -> T:
        """`change(image, member)` on one membership of an image the caller may see."""
        return await self.db.run(
            lambda s: change(_visible(s, ctx, image_id), s.get(m.ImageMember, (image_id, member_id))), write=write)

    async def delete_member(self, ctx: RequestContext, image_id: str, member_id: str,
                            check: Callable[[m.Image], None]) -> None:
        def write(session: Session) -> None:
            check(_visible(session, ctx, image_id))
            member = session.get(m.ImageMember, (image_id, member_id))
            if member is None:
                raise NotFound(f"Project {member_id} is not a member of image {image_id}.")
            session.delete(member)

        await self.db.run(write, write=True)
