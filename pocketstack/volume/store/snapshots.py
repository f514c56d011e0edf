"""Snapshots: create (claiming the backend's room), list, show, update, delete, reset, metadata."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest
from pocketstack.common.timeutils import utcnow
from pocketstack.settings import Settings
from pocketstack.volume import models as m
from pocketstack.volume import quotas, scheduler
from pocketstack.volume import states as st
from pocketstack.volume.store.lookups import Authorize, project_rows, visible_snapshot, visible_volume
from pocketstack.volume.store.metadata import read_metadata, remove_metadata_item, update_metadata


async def create_snapshot(db: Database, settings: Settings, ctx: RequestContext, authorize: Authorize,
                          volume_id: str, snapshot_id: str, *, force: bool, fields: dict[str, Any],
                          metadata: dict[str, str]) -> str:
    """A snapshot of an available volume (creating, on the volume's backend); returns that backend. `fields`:
    name and description."""
    def write(session: Session) -> str:
        vol = visible_volume(session, volume_id, ctx)
        authorize(vol)
        if vol.status == st.IN_USE:
            raise BadRequest(f"Invalid volume: Volume {vol.id} is in-use" + (
                "; the file backend snapshots detached volumes only." if force else
                ": snapshotting an in-use volume needs force, and the file backend snapshots detached volumes "
                "only."))
        st.require("snapshot", "volume", vol.id, vol.status, (st.AVAILABLE,))
        quotas.check(session, settings, ctx.project_id, snapshots=1, gigabytes=vol.size,
                     volume_type_id=vol.volume_type_id)
        pool = next((p for p in scheduler.pools(session, settings, lock=True) if p.host == vol.host), None)
        if pool is None or pool.free_gb < vol.size:
            raise BadRequest(f"Invalid input received: the backend of volume {vol.id} has not the {vol.size} GB "
                             "free that a snapshot of it may grow to.")
        now = utcnow()
        session.add(m.Snapshot(id=snapshot_id, volume_id=vol.id, project_id=ctx.project_id, user_id=ctx.user_id,
                               status=st.CREATING, progress="0%", volume_size=vol.size,
                               volume_type_id=vol.volume_type_id, host=vol.host, created_at=now, updated_at=now,
                               **fields))
        for key, value in metadata.items():
            session.add(m.SnapshotMetadata(snapshot_id=snapshot_id, key=key, value=value))
        return vol.host
    return await db.run(write, write=True)


async def get_snapshot(db: Database, snapshot_id: str, ctx: RequestContext) -> m.Snapshot:
    return await db.run(lambda s: visible_snapshot(s, snapshot_id, ctx), write=False)


async def list_snapshots(db: Database, project_id: str | None) -> list[m.Snapshot]:
    """The snapshots of `project_id` (None: of every project)."""
    return await project_rows(db, m.Snapshot, project_id)


async def update_snapshot(db: Database, ctx: RequestContext, authorize: Authorize, snapshot_id: str,
                          changes: dict[str, Any]) -> m.Snapshot:
    def write(session: Session) -> m.Snapshot:
        snap = visible_snapshot(session, snapshot_id, ctx)
        authorize(snap)
        for attr, value in changes.items():
            setattr(snap, attr, value)
        snap.updated_at = utcnow()
        session.flush()
        return snap
    return await db.run(write, write=True)


async def start_delete(db: Database, ctx: RequestContext, authorize: Authorize, snapshot_id: str,
                       force: bool) -> str | None:
    """Mark the snapshot deleting and return its backend, or delete the record at once when no backend holds it
    (None)."""
    def write(session: Session) -> str | None:
        snap = visible_snapshot(session, snapshot_id, ctx)
        authorize(snap)
        if not force:
            st.require("delete", "snapshot", snap.id, snap.status, (st.AVAILABLE, st.ERROR))
        volume = session.get(m.Volume, snap.volume_id)
        if snap.provider_location and volume is not None and any(a.connection_info for a in volume.attachments):
            raise BadRequest(f"Invalid snapshot: volume {volume.id} is attached; the file backend deletes snapshots "
                             "of detached volumes only.")
        if snap.host is None or (snap.provider_location is None and snap.status == st.ERROR):
            session.delete(snap)
            return None
        snap.status, snap.updated_at = st.DELETING, utcnow()
        return snap.host
    return await db.run(write, write=True)


async def reset_status(db: Database, ctx: RequestContext, snapshot_id: str, status: str) -> None:
    def write(session: Session) -> None:
        snap = visible_snapshot(session, snapshot_id, ctx)
        snap.status, snap.updated_at = status, utcnow()
    await db.run(write, write=True)


# os-update_snapshot_status: the transitions a snapshot's driver (or Nova's assisted snapshot) may report
STATUS_UPDATES = {"creating": ("available", "error"), "deleting": ("error_deleting",)}


async def update_status(db: Database, ctx: RequestContext, authorize: Authorize, snapshot_id: str, status: str,
                        progress: str | None) -> None:
    """Cinder's os-update_snapshot_status: only the transitions of `STATUS_UPDATES`; 400 for any other."""
    def write(session: Session) -> None:
        snap = visible_snapshot(session, snapshot_id, ctx)
        authorize(snap)
        if status not in STATUS_UPDATES.get(snap.status, ()):
            raise BadRequest(f"Invalid input received: Snapshot status {snap.status} not allowed for "
                             f"update_snapshot_status to {status}.")
        snap.status, snap.updated_at = status, utcnow()
        if progress is not None:
            snap.progress = progress
    await db.run(write, write=True)


async def get_metadata(db: Database, ctx: RequestContext, authorize: Authorize, snapshot_id: str) -> dict[str, str]:
    return await read_metadata(db, visible_snapshot, ctx, authorize, snapshot_id)


async def set_metadata(db: Database, ctx: RequestContext, authorize: Authorize, snapshot_id: str,
                       metadata: dict[str, str], *, replace: bool) -> dict[str, str]:
    return await update_metadata(db, visible_snapshot, ctx, authorize, snapshot_id, metadata, replace=replace)


async def delete_metadata(db: Database, ctx: RequestContext, authorize: Authorize, snapshot_id: str,
                          key: str) -> None:
    await remove_metadata_item(db, visible_snapshot, ctx, authorize, snapshot_id, key, "Snapshot")
