"""Finding the records a request names, as the caller may see them (404 otherwise, never another project's), and
the row types the API's views render."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import NotFound
from pocketstack.settings import Settings
from pocketstack.volume import models as m

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")

# The row types handlers and views see (typed without importing the models).
Volume = m.Volume
Snapshot = m.Snapshot
VolumeAttachment = m.VolumeAttachment
VolumeType = m.VolumeType
Service = m.Service
Message = m.Message
Transfer = m.Transfer
ProjectDefaultType = m.ProjectDefaultType
QosSpecs = m.QosSpecs
VolumeTypeEncryption = m.VolumeTypeEncryption

Authorize = Callable[[Any], None]  # raises when the caller may not act on this row (policy on its project)


def is_uuid(value: str | None) -> bool:
    return isinstance(value, str) and bool(UUID_RE.match(value))


async def project_rows(db: Database, model: Any, project_id: str | None, *where: Any) -> list[Any]:
    """The rows of `model` (matching `where`) of `project_id`, or of every project when it is None."""
    query = select(model).where(*where)
    if project_id is not None:
        query = query.where(model.project_id == project_id)
    return await db.run(lambda s: list(s.scalars(query).all()), write=False)


def visible_volume(session: Session, volume_id: str, ctx: RequestContext) -> m.Volume:
    volume = session.get(m.Volume, volume_id) if is_uuid(volume_id) else None
    if volume is None or (not ctx.is_admin and volume.project_id != ctx.project_id):
        raise NotFound(f"Volume {volume_id} could not be found.")
    return volume


def visible_snapshot(session: Session, snapshot_id: str, ctx: RequestContext) -> m.Snapshot:
    snapshot = session.get(m.Snapshot, snapshot_id) if is_uuid(snapshot_id) else None
    if snapshot is None or (not ctx.is_admin and snapshot.project_id != ctx.project_id):
        raise NotFound(f"Snapshot {snapshot_id} could not be found.")
    return snapshot


def visible_attachment(session: Session, attachment_id: str, ctx: RequestContext) -> m.VolumeAttachment:
    attachment = session.get(m.VolumeAttachment, attachment_id) if is_uuid(attachment_id) else None
    volume = session.get(m.Volume, attachment.volume_id) if attachment is not None else None
    if volume is None or (not ctx.is_admin and volume.project_id != ctx.project_id):
        raise NotFound(f"Volume attachment {attachment_id} could not be found.")
    return attachment


def types_query(ctx: RequestContext):
    """Volume types the caller may use: public ones, and private ones shared with its project (admins: all)."""
    query = select(m.VolumeType)
    if not ctx.is_admin:
        query = query.where(or_(m.VolumeType.is_public.is_(True), m.VolumeType.id.in_(
            select(m.VolumeTypeProject.type_id).where(m.VolumeTypeProject.project_id == ctx.project_id))))
    return query


def default_type(session: Session, settings: Settings, project_id: str | None) -> m.VolumeType:
    """The project's own default type (3.62) if it has one, else the configured default type."""
    own = session.get(m.ProjectDefaultType, project_id) if project_id else None
    if own is not None:
        return session.get(m.VolumeType, own.volume_type_id)
    vtype = session.scalar(select(m.VolumeType).where(m.VolumeType.name == settings.volume.default_volume_type))
    if vtype is None:
        raise NotFound(f"The default volume type {settings.volume.default_volume_type} could not be found.")
    return vtype


def resolve_type(session: Session, ref: str, ctx: RequestContext, settings: Settings) -> m.VolumeType:
    """A volume type by id or name (`default` is the caller's default type), among those the caller may use."""
    if ref == "default":
        return default_type(session, settings, ctx.project_id)
    query = types_query(ctx)
    vtype = session.scalar(query.where(m.VolumeType.id == ref)) if is_uuid(ref) else None
    if vtype is None:
        vtype = session.scalar(query.where(m.VolumeType.name == ref))
    if vtype is None:
        raise NotFound(f"Volume type with name {ref} could not be found.")
    return vtype


def is_multiattach(vtype: m.VolumeType) -> bool:
    """The `multiattach="<is> True"` extra spec of a type."""
    spec = next((s.value for s in vtype.extra_specs if s.key == "multiattach"), "")
    return spec.replace("<is>", "").strip().lower() == "true"
