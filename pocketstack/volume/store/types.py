"""Volume types, their extra specs and the projects a private type is shared with."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.settings import Settings
from pocketstack.volume import models as m
from pocketstack.volume.store.lookups import is_uuid, resolve_type, types_query


def _admin_type(session: Session, type_id: str) -> m.VolumeType:
    vtype = session.get(m.VolumeType, type_id) if is_uuid(type_id) else None
    if vtype is None:
        raise NotFound(f"Volume type {type_id} could not be found.")
    return vtype


def _name_free(session: Session, name: str) -> None:
    if session.scalar(select(m.VolumeType).where(m.VolumeType.name == name)):
        raise Conflict(f"Volume Type {name} already exists.")


async def list_types(db: Database, ctx: RequestContext, is_public: bool | None) -> list[m.VolumeType]:
    """The types `ctx` may use, only the public (or only the private) ones when `is_public` says so."""
    query = types_query(ctx)
    if is_public is not None:
        query = query.where(m.VolumeType.is_public.is_(is_public))
    return await db.run(lambda s: list(s.scalars(query).all()), write=False)


async def get_type(db: Database, settings: Settings, ctx: RequestContext, type_ref: str) -> m.VolumeType:
    """A type by id or name among those `ctx` may use."""
    return await db.run(lambda s: resolve_type(s, type_ref, ctx, settings), write=False)


async def create_type(db: Database, name: str, description: str | None, is_public: bool,
                      specs: dict[str, str]) -> m.VolumeType:
    def write(session: Session) -> m.VolumeType:
        _name_free(session, name)
        now = utcnow()
        vtype = m.VolumeType(id=str(uuid.uuid4()), name=name, description=description, is_public=is_public,
                             created_at=now, updated_at=now)
        session.add(vtype)
        for key, value in specs.items():
            session.add(m.VolumeTypeExtraSpec(type_id=vtype.id, key=key, value=value))
        session.flush()
        session.refresh(vtype, ["extra_specs"])
        return vtype
    return await db.run(write, write=True)


async def update_type(db: Database, settings: Settings, type_id: str, *, name: str | None,
                      description: tuple[bool, str | None], is_public: bool | None) -> m.VolumeType:
    """`description`: (whether the request sets it, the value)."""
    def write(session: Session) -> m.VolumeType:
        vtype = _admin_type(session, type_id)
        if name is not None and name != vtype.name:
            if vtype.name == settings.volume.default_volume_type:
                raise BadRequest("Invalid volume type: the default volume type cannot be renamed.")
            _name_free(session, name)
            vtype.name = name
        if description[0]:
            vtype.description = description[1]
        if is_public is not None:
            vtype.is_public = is_public
        vtype.updated_at = utcnow()
        session.flush()
        return vtype
    return await db.run(write, write=True)


async def delete_type(db: Database, settings: Settings, type_id: str) -> None:
    """A type no volume uses, that is nobody's default."""
    def write(session: Session) -> None:
        vtype = _admin_type(session, type_id)
        if vtype.name == settings.volume.default_volume_type:
            raise BadRequest("Invalid volume type: the default volume type cannot be deleted.")
        if session.scalar(select(m.ProjectDefaultType).where(m.ProjectDefaultType.volume_type_id == vtype.id)):
            raise BadRequest(f"Invalid volume type: {vtype.name} is the default type of a project; unset it first.")
        used = session.scalar(select(func.count()).select_from(m.Volume).where(m.Volume.volume_type_id == vtype.id))
        if used:
            raise BadRequest(f"Target volume type is still in use: {used} volume(s) have type {vtype.name}.")
        session.delete(vtype)
    await db.run(write, write=True)


# ----- extra specs -------------------------------------------------------------------------------------------------
def _specs_of(vtype: m.VolumeType) -> dict[str, str]:
    return {s.key: s.value for s in vtype.extra_specs}


async def specs(db: Database, settings: Settings, ctx: RequestContext, type_ref: str) -> dict[str, str]:
    """The extra specs of a type `ctx` may use."""
    return await db.run(lambda s: _specs_of(resolve_type(s, type_ref, ctx, settings)), write=False)


def _after_change(session: Session, vtype: m.VolumeType) -> dict[str, str]:
    vtype.updated_at = utcnow()
    session.flush()
    session.expire(vtype, ["extra_specs"])
    return _specs_of(vtype)


async def set_specs(db: Database, type_id: str, new: dict[str, str]) -> dict[str, str]:
    """Add or change extra specs; returns them all."""
    def write(session: Session) -> dict[str, str]:
        vtype = _admin_type(session, type_id)
        have = {s.key: s for s in vtype.extra_specs}
        for key, value in new.items():
            if key in have:
                have[key].value = value
            else:
                session.add(m.VolumeTypeExtraSpec(type_id=vtype.id, key=key, value=value))
        return _after_change(session, vtype)
    return await db.run(write, write=True)


async def delete_spec(db: Database, type_id: str, key: str) -> None:
    def write(session: Session) -> None:
        vtype = _admin_type(session, type_id)
        spec = next((s for s in vtype.extra_specs if s.key == key), None)
        if spec is None:
            raise NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
        session.delete(spec)
        _after_change(session, vtype)
    await db.run(write, write=True)


# ----- access of private types -------------------------------------------------------------------------------------
async def access_list(db: Database, type_id: str) -> tuple[str, list[str]]:
    """The private type's id and the projects it is shared with."""
    def read(session: Session) -> tuple[str, list[str]]:
        vtype = _admin_type(session, type_id)
        if vtype.is_public:
            raise NotFound(f"Access list not available for public volume types: {type_id}.")
        rows = session.scalars(select(m.VolumeTypeProject).where(m.VolumeTypeProject.type_id == vtype.id)).all()
        return vtype.id, [r.project_id for r in rows]
    return await db.run(read, write=False)


async def change_access(db: Database, type_id: str, project: str, *, add: bool) -> None:
    """Share the private type with `project` (`add`) or stop sharing it."""
    def write(session: Session) -> None:
        vtype = _admin_type(session, type_id)
        if vtype.is_public:
            raise BadRequest(f"Invalid volume type: type access modification is not applicable to public volume "
                             f"type {type_id}.")
        row = session.get(m.VolumeTypeProject, (vtype.id, project))
        if add:
            if row is not None:
                raise Conflict(f"Volume type access for {vtype.id} / {project} combination already exists.")
            session.add(m.VolumeTypeProject(type_id=vtype.id, project_id=project))
        else:
            if row is None:
                raise NotFound(f"Volume type access not found for {vtype.id} / {project} combination.")
            session.delete(row)
    await db.run(write, write=True)
