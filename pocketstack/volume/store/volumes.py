"""Volumes: create (from nothing, an image, a snapshot or another volume), list, update, delete, metadata, and
the changes the volume actions make on a volume (`change_volume` with a `VolumeEdit`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest
from pocketstack.common.timeutils import utcnow
from pocketstack.settings import Settings
from pocketstack.volume import messages, quotas, scheduler
from pocketstack.volume import models as m
from pocketstack.volume import states as st
from pocketstack.volume.store.attachments import finish_detach, new_attachment
from pocketstack.volume.store.lookups import (
    Authorize,
    default_type,
    is_multiattach,
    project_rows,
    resolve_type,
    visible_snapshot,
    visible_volume,
)
from pocketstack.volume.store.metadata import read_metadata, remove_metadata_item, update_metadata, write_metadata

T = TypeVar("T")

# states a volume may be deleted from without force
DELETABLE = (st.AVAILABLE, st.ERROR, st.ERROR_EXTENDING, "error_restoring", "error_managing")


@dataclass(frozen=True)
class NewVolume:
    """A volume create, validated: its size (None: the source's), sources and the columns it sets itself."""

    id: str
    size: int | None
    snapshot_id: str | None
    source_volid: str | None
    volume_type: str | None  # id or name as given
    availability_zone: str | None
    image_id: str | None
    fields: dict[str, Any]  # name, description
    metadata: dict[str, str]


def _source(session: Session, new: NewVolume, ctx: RequestContext) -> tuple[Any, str | None, Any, str | None]:
    """Size, backend, type and zone the source (snapshot or volume) gives the new volume."""
    size, zone = new.size, new.availability_zone
    if new.snapshot_id:
        snap = visible_snapshot(session, new.snapshot_id, ctx)
        st.require("create a volume from it", "snapshot", snap.id, snap.status, (st.AVAILABLE,))
        source = session.get(m.Volume, snap.volume_id)
        size = size or snap.volume_size
        if size < snap.volume_size:
            raise BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be smaller than the "
                             f"snapshot size {snap.volume_size}GB. They must be >= original snapshot size.")
        return size, snap.host, session.get(m.VolumeType, snap.volume_type_id), zone or source.availability_zone
    if new.source_volid:
        source = visible_volume(session, new.source_volid, ctx)
        st.require("clone it", "volume", source.id, source.status, (st.AVAILABLE,))
        size = size or source.size
        if size < source.size:
            raise BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be smaller than the source "
                             f"volume size {source.size}GB. They must be >= original volume size.")
        return size, source.host, source.volume_type, zone or source.availability_zone
    return size, None, None, zone


async def create_volume(db: Database, settings: Settings, ctx: RequestContext, new: NewVolume) -> str | None:
    """Insert the volume (creating, on its backend), or in error when no backend can hold it; returns the backend
    (None: in error, with a user message saying why)."""
    def write(session: Session) -> str | None:
        size, host, source_type, zone = _source(session, new, ctx)
        vtype = (resolve_type(session, new.volume_type, ctx, settings) if new.volume_type else
                 source_type or default_type(session, settings, ctx.project_id))
        if vtype.encryption is not None:
            raise BadRequest(f"Invalid volume type: volume type {vtype.name} asks for encryption and this cloud has "
                             "no key manager to hold the keys.")
        zones = {settings.volume.availability_zone, *session.scalars(select(m.Service.availability_zone).where(
            m.Service.binary == scheduler.VOLUME_BINARY)).all()}
        zone = zone or settings.volume.availability_zone
        if zone not in zones:
            raise BadRequest(f"Invalid input received: Availability zone '{zone}' is invalid.")
        quotas.check(session, settings, ctx.project_id, volumes=1, gigabytes=size, volume_size=size,
                     volume_type_id=vtype.id)
        failure = None
        try:
            host = scheduler.pick(session, settings, size, availability_zone=zone, host=host)
        except scheduler.NoValidBackend as exc:
            host, failure = None, str(exc)
        now = utcnow()
        session.add(m.Volume(
            id=new.id, project_id=ctx.project_id, user_id=ctx.user_id, size=size,
            status=st.ERROR if failure else st.CREATING, attach_status=st.DETACHED, availability_zone=zone,
            volume_type_id=vtype.id, snapshot_id=new.snapshot_id, source_volid=new.source_volid,
            image_id=new.image_id, bootable=False, multiattach=is_multiattach(vtype), host=host,
            image_metadata={}, admin_metadata={}, created_at=now, updated_at=now, **new.fields))
        for key, value in new.metadata.items():
            session.add(m.VolumeMetadata(volume_id=new.id, key=key, value=value))
        if failure:
            messages.add(session, ctx.project_id, "VOLUME", new.id, messages.SCHEDULE_ALLOCATE_VOLUME, failure)
        return host
    return await db.run(write, write=True)


async def fail_create(db: Database, volume_id: str, reason: str) -> None:
    """The volume could not be handed to its backend: error, with a user message."""
    def write(session: Session) -> None:
        volume = session.get(m.Volume, volume_id)
        volume.status = st.ERROR
        messages.add(session, volume.project_id, "VOLUME", volume_id, messages.SCHEDULE_ALLOCATE_VOLUME, reason)
    await db.run(write, write=True)


async def get_volume(db: Database, volume_id: str, ctx: RequestContext) -> m.Volume:
    return await db.run(lambda s: visible_volume(s, volume_id, ctx), write=False)


async def list_volumes(db: Database, project_id: str | None) -> list[m.Volume]:
    """The volumes of `project_id` (None: of every project)."""
    return await project_rows(db, m.Volume, project_id)


async def update_volume(db: Database, ctx: RequestContext, authorize: Authorize, volume_id: str,
                        changes: dict[str, Any], metadata: dict[str, str] | None) -> m.Volume:
    """Set `changes` (name, description) and, when given, replace the metadata."""
    def write(session: Session) -> m.Volume:
        vol = visible_volume(session, volume_id, ctx)
        authorize(vol)
        for attr, value in changes.items():
            setattr(vol, attr, value)
        if metadata is not None:
            write_metadata(session, vol, metadata, replace=True)
        vol.updated_at = utcnow()
        session.flush()
        return vol
    return await db.run(write, write=True)


async def start_delete(db: Database, ctx: RequestContext, authorize: Authorize, volume_id: str, *, cascade: bool,
                       force: bool) -> str | None:
    """Mark the volume (and with `cascade` its snapshots) deleting and return its backend; a volume that never
    reached a backend is deleted at once (None)."""
    def write(session: Session) -> str | None:
        vol = visible_volume(session, volume_id, ctx)
        authorize(vol)
        snapshots = session.scalars(select(m.Snapshot).where(m.Snapshot.volume_id == vol.id)).all()
        blocked = (vol.attach_status == st.ATTACHED or vol.attachments or (not force and vol.status not in DELETABLE)
                   or vol.status == st.DELETING or (snapshots and not cascade)
                   or any(s.status not in (st.AVAILABLE, st.ERROR) for s in snapshots))
        if blocked:
            raise BadRequest("Invalid volume: Volume status must be available or error or error_restoring or "
                             "error_extending or error_managing and must not be migrating, attached, belong to a "
                             "group, have snapshots, awaiting a transfer, or be disassociated from snapshots after "
                             f"volume transfer (volume {vol.id} is {vol.status} with {len(vol.attachments)} "
                             f"attachment(s) and {len(snapshots)} snapshot(s)).")
        if vol.host is None:  # never reached a backend: nothing to remove there
            for snap in snapshots:
                session.delete(snap)
            session.delete(vol)
            return None
        vol.previous_status, vol.status, vol.updated_at = vol.status, st.DELETING, utcnow()
        for snap in snapshots:
            snap.status = st.DELETING
        return vol.host
    return await db.run(write, write=True)


# ----- metadata ----------------------------------------------------------------------------------------------------
async def get_metadata(db: Database, ctx: RequestContext, authorize: Authorize, volume_id: str) -> dict[str, str]:
    return await read_metadata(db, visible_volume, ctx, authorize, volume_id)


def _not_deleting(vol: m.Volume) -> None:
    if vol.status in (st.DELETING, st.ERROR_DELETING):
        raise BadRequest(f"Invalid volume: Volume {vol.id} is being deleted.")


async def set_metadata(db: Database, ctx: RequestContext, authorize: Authorize, volume_id: str,
                       metadata: dict[str, str], *, replace: bool) -> dict[str, str]:
    return await update_metadata(db, visible_volume, ctx, authorize, volume_id, metadata, replace=replace,
                                 check=_not_deleting)


async def delete_metadata(db: Database, ctx: RequestContext, authorize: Authorize, volume_id: str,
                          key: str) -> None:
    await remove_metadata_item(db, visible_volume, ctx, authorize, volume_id, key, "Volume")


# ----- the volume actions ------------------------------------------------------------------------------------------
@dataclass
class VolumeEdit:
    """The volume a volume action changes, inside the action's transaction, and what the action may ask of the
    store there."""

    vol: m.Volume
    _session: Session
    _ctx: RequestContext
    _settings: Settings

    def check_quota(self, **deltas: int) -> None:
        quotas.check(self._session, self._settings, self.vol.project_id, volume_type_id=self.vol.volume_type_id,
                     **deltas)

    def pool(self) -> scheduler.Pool | None:
        """The volume's backend pool, locked until the transaction ends."""
        return next((p for p in scheduler.pools(self._session, self._settings, lock=True)
                     if p.host == self.vol.host), None)

    def volume_type(self, ref: str) -> m.VolumeType:
        return resolve_type(self._session, ref, self._ctx, self._settings)

    def snapshot(self, snapshot_id: str) -> m.Snapshot:
        return visible_snapshot(self._session, snapshot_id, self._ctx)

    def latest_snapshot(self) -> m.Snapshot | None:
        return self._session.scalar(select(m.Snapshot).where(m.Snapshot.volume_id == self.vol.id)
                                    .order_by(m.Snapshot.created_at.desc()).limit(1))

    def new_attachment(self, instance_uuid: str | None, mode: str) -> m.VolumeAttachment:
        return new_attachment(self._session, self.vol, instance_uuid, mode)

    def detach(self, attachment: m.VolumeAttachment) -> None:
        finish_detach(self._session, self.vol, attachment)


async def change_volume(db: Database, settings: Settings, ctx: RequestContext, authorize: Authorize,
                        volume_id: str, change: Callable[[VolumeEdit], T], *, write: bool = True) -> T:
    """Run `change` on the caller's volume after the policy check on its project, in a write transaction (its
    `updated_at` set) unless `write` is off."""
    def run(session: Session) -> T:
        vol = visible_volume(session, volume_id, ctx)
        authorize(vol)
        result = change(VolumeEdit(vol, session, ctx, settings))
        if write:
            vol.updated_at = utcnow()
        return result
    return await db.run(run, write=write)
