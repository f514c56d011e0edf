"""Volume transfers: a volume waiting, under a salted hash of its auth key, for another project to take it."""

from __future__ import annotations

import hashlib
import hmac
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.context import RequestContext
from pocketstack.common.db import Database
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.settings import Settings
from pocketstack.volume import models as m
from pocketstack.volume import quotas
from pocketstack.volume import states as st
from pocketstack.volume.store.lookups import Authorize, is_uuid, project_rows, visible_volume


def _hash(salt: str, auth_key: str) -> str:
    return hashlib.sha256((salt + auth_key).encode()).hexdigest()


def _visible(session: Session, transfer_id: str, ctx: RequestContext) -> m.Transfer:
    transfer = session.get(m.Transfer, transfer_id) if is_uuid(transfer_id) else None
    if transfer is None or (not ctx.is_admin and transfer.project_id != ctx.project_id):
        raise NotFound(f"Transfer {transfer_id} could not be found.")
    return transfer


def _snapshots(session: Session, volume_id: str) -> list[m.Snapshot]:
    return list(session.scalars(select(m.Snapshot).where(m.Snapshot.volume_id == volume_id)).all())


async def create_transfer(db: Database, ctx: RequestContext, authorize: Authorize, volume_id: str, *,
                          name: str | None, no_snapshots: bool, auth_key: str, salt: str,
                          snapshots_allowed: bool) -> m.Transfer:
    """The volume (available; its snapshots available too unless `no_snapshots`) awaits its transfer.
    `snapshots_allowed`: a volume with snapshots may be transferred (3.55)."""
    def write(session: Session) -> m.Transfer:
        vol = visible_volume(session, volume_id, ctx)
        authorize(vol)
        st.require("transfer it", "volume", vol.id, vol.status, (st.AVAILABLE,))
        snapshots = _snapshots(session, vol.id)
        if snapshots and not snapshots_allowed:
            raise BadRequest(f"Invalid volume: volume {vol.id} has snapshots; transferring them needs microversion "
                             "3.55 or later.")
        if not no_snapshots and any(s.status != st.AVAILABLE for s in snapshots):
            raise BadRequest(f"Invalid snapshot: every snapshot of volume {vol.id} must be available to transfer "
                             "it.")
        transfer = m.Transfer(id=str(uuid.uuid4()), volume_id=vol.id, project_id=vol.project_id, name=name,
                              salt=salt, crypt_hash=_hash(salt, auth_key), no_snapshots=no_snapshots,
                              created_at=utcnow())
        session.add(transfer)
        vol.previous_status, vol.status, vol.updated_at = vol.status, st.AWAITING_TRANSFER, utcnow()
        return transfer
    return await db.run(write, write=True)


async def list_transfers(db: Database, project_id: str | None) -> list[m.Transfer]:
    """The transfers of `project_id` (None: of every project)."""
    return await project_rows(db, m.Transfer, project_id)


async def get_transfer(db: Database, transfer_id: str, ctx: RequestContext) -> m.Transfer:
    return await db.run(lambda s: _visible(s, transfer_id, ctx), write=False)


async def delete_transfer(db: Database, transfer_id: str, ctx: RequestContext, authorize: Authorize) -> None:
    """Cancel the transfer: the volume is its owner's, available, again."""
    def write(session: Session) -> None:
        transfer = _visible(session, transfer_id, ctx)
        authorize(transfer)
        vol = session.get(m.Volume, transfer.volume_id)
        if vol is not None and vol.status == st.AWAITING_TRANSFER:
            vol.status, vol.updated_at = st.AVAILABLE, utcnow()
        session.delete(transfer)
    await db.run(write, write=True)


async def accept_transfer(db: Database, settings: Settings, ctx: RequestContext, transfer_id: str,
                          auth_key: str) -> m.Transfer:
    """The volume (and its snapshots unless `no_snapshots`) now belong to `ctx`'s project, within its quota; the
    transfer is gone (its row comes back for the view)."""
    def write(session: Session) -> m.Transfer:
        transfer = session.get(m.Transfer, transfer_id) if is_uuid(transfer_id) else None
        if transfer is None:
            raise NotFound(f"Transfer {transfer_id} could not be found.")
        if not hmac.compare_digest(_hash(transfer.salt, auth_key), transfer.crypt_hash):
            raise BadRequest(f"Invalid auth key: Attempt to transfer {transfer_id} with invalid auth key.")
        vol = session.get(m.Volume, transfer.volume_id)
        st.require("accept its transfer", "volume", vol.id, vol.status, (st.AWAITING_TRANSFER,))
        snapshots = [] if transfer.no_snapshots else _snapshots(session, vol.id)
        quotas.check(session, settings, ctx.project_id, volumes=1, snapshots=len(snapshots),
                     gigabytes=vol.size + sum(s.volume_size for s in snapshots), volume_size=vol.size,
                     volume_type_id=vol.volume_type_id)
        now = utcnow()
        vol.project_id, vol.user_id, vol.status, vol.updated_at = ctx.project_id, ctx.user_id, st.AVAILABLE, now
        for snap in snapshots:
            snap.project_id, snap.user_id, snap.updated_at = ctx.project_id, ctx.user_id, now
        session.delete(transfer)
        return transfer
    return await db.run(write, write=True)
