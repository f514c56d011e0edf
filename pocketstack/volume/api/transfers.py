"""`/v3/{project_id}/os-volume-transfer` (and `/volume-transfers` from 3.55): hand a volume to another project.

The owner creates a transfer and gets its auth key once (only a salted hash is kept); the volume waits in
`awaiting-transfer`; any project that presents the transfer id and the key takes the volume, and its snapshots
unless `no_snapshots`, within its own quota. Deleting the transfer gives the volume back to its owner.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from pocketstack.common.app import json_response
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.volume import models as m
from pocketstack.volume import quotas
from pocketstack.volume import states as st
from pocketstack.volume.api.common import (
    all_projects,
    body_of,
    enforce,
    is_uuid,
    isotime,
    links,
    paginate,
    require_version,
    sort_spec,
    state,
    version,
)
from pocketstack.volume.store.lookups import visible_volume

TRANSFER_SORT = {"id": "id", "name": "name", "created_at": "created_at", "volume_id": "volume_id"}


class TransferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    volume_id: str
    name: str | None = Field(None, max_length=255)
    no_snapshots: bool = False


class TransferAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")
    auth_key: str = Field(min_length=1, max_length=255)


def _hash(salt: str, auth_key: str) -> str:
    return hashlib.sha256((salt + auth_key).encode()).hexdigest()


def _kind(request: Request) -> str:
    return "volume-transfers" if "/volume-transfers" in request.url.path else "os-volume-transfer"


def _view(request: Request, transfer: m.Transfer, *, detail: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"id": transfer.id, "volume_id": transfer.volume_id, "name": transfer.name,
                            "links": links(request, _kind(request), transfer.id)}
    if detail:
        body["created_at"] = isotime(transfer.created_at)
        if version(request) >= "3.55":
            body["no_snapshots"] = transfer.no_snapshots
        if version(request) >= "3.57":
            body.update(source_project_id=transfer.project_id, destination_project_id=None, accepted=False)
    return body


def _visible(session: Session, transfer_id: str, ctx: RequestContext) -> m.Transfer:
    transfer = session.get(m.Transfer, transfer_id) if is_uuid(transfer_id) else None
    if transfer is None or (not ctx.is_admin and transfer.project_id != ctx.project_id):
        raise NotFound(f"Transfer {transfer_id} could not be found.")
    return transfer



def _check_path(request: Request) -> None:
    if _kind(request) == "volume-transfers":
        require_version(request, "3.55")


async def create_transfer(request: Request) -> Response:
    _check_path(request)
    ctx = enforce(request, "volume:create_transfer")
    body = await body_of(request, "transfer", TransferCreate)
    if body.no_snapshots and version(request) < "3.55":
        raise BadRequest("Invalid input: 'no_snapshots' needs microversion 3.55 or later.")
    auth_key = secrets.token_hex(8)
    salt = secrets.token_hex(8)

    def write(session: Session) -> dict[str, Any]:
        vol = visible_volume(session, body.volume_id, ctx)
        enforce(request, "volume:create_transfer", {"project_id": vol.project_id})
        st.require("transfer it", "volume", vol.id, vol.status, (st.AVAILABLE,))
        snapshots = session.scalars(select(m.Snapshot).where(m.Snapshot.volume_id == vol.id)).all()
        if snapshots and version(request) < "3.55":
            raise BadRequest(f"Invalid volume: volume {vol.id} has snapshots; transferring them needs microversion "
                             "3.55 or later.")
        if not body.no_snapshots and any(s.status != st.AVAILABLE for s in snapshots):
            raise BadRequest(f"Invalid snapshot: every snapshot of volume {vol.id} must be available to transfer "
                             "it.")
        transfer = m.Transfer(id=str(uuid.uuid4()), volume_id=vol.id, project_id=vol.project_id, name=body.name,
                              salt=salt, crypt_hash=_hash(salt, auth_key), no_snapshots=body.no_snapshots,
                              created_at=utcnow())
        session.add(transfer)
        vol.previous_status, vol.status, vol.updated_at = vol.status, st.AWAITING_TRANSFER, utcnow()
        return {"transfer": {**_view(request, transfer), "auth_key": auth_key}}

    return json_response(await state(request).db.run(write, write=True), status=202)


async def _list(request: Request, detail: bool) -> Response:
    _check_path(request)
    ctx = enforce(request, "volume:get_all_transfers")
    sort = sort_spec(request, TRANSFER_SORT)

    def read(session: Session) -> dict[str, Any]:
        query = select(m.Transfer)
        if not all_projects(request, ctx):
            query = query.where(m.Transfer.project_id == ctx.project_id)
        page, _, _ = paginate(request, session.scalars(query).all(), sort)
        return {"transfers": [_view(request, t, detail=detail) for t in page]}

    return json_response(await state(request).db.run(read, write=False))


async def list_transfers(request: Request) -> Response:
    return await _list(request, detail=False)


async def list_transfers_detail(request: Request) -> Response:
    return await _list(request, detail=True)


async def show_transfer(request: Request, transfer_id: str) -> Response:
    _check_path(request)
    ctx = enforce(request, "volume:get_transfer")

    def read(session: Session) -> dict[str, Any]:
        return {"transfer": _view(request, _visible(session, transfer_id, ctx))}

    return json_response(await state(request).db.run(read, write=False))


async def delete_transfer(request: Request, transfer_id: str) -> Response:
    _check_path(request)
    ctx = enforce(request, "volume:delete_transfer")

    def write(session: Session) -> None:
        transfer = _visible(session, transfer_id, ctx)
        enforce(request, "volume:delete_transfer", {"project_id": transfer.project_id})
        vol = session.get(m.Volume, transfer.volume_id)
        if vol is not None and vol.status == st.AWAITING_TRANSFER:
            vol.status, vol.updated_at = st.AVAILABLE, utcnow()
        session.delete(transfer)

    await state(request).db.run(write, write=True)
    return Response(status_code=202)


async def accept_transfer(request: Request, transfer_id: str) -> Response:
    """Take the volume with the auth key: it (and its snapshots) now belong to the caller's project."""
    _check_path(request)
    ctx = enforce(request, "volume:accept_transfer")
    body = await body_of(request, "accept", TransferAccept)
    settings = state(request).settings

    def write(session: Session) -> dict[str, Any]:
        transfer = session.get(m.Transfer, transfer_id) if is_uuid(transfer_id) else None
        if transfer is None:
            raise NotFound(f"Transfer {transfer_id} could not be found.")
        if not hmac.compare_digest(_hash(transfer.salt, body.auth_key), transfer.crypt_hash):
            raise BadRequest(f"Invalid auth key: Attempt to transfer {transfer_id} with invalid auth key.")
        vol = session.get(m.Volume, transfer.volume_id)
        st.require("accept its transfer", "volume", vol.id, vol.status, (st.AWAITING_TRANSFER,))
        snapshots = [] if transfer.no_snapshots else list(session.scalars(select(m.Snapshot).where(
            m.Snapshot.volume_id == vol.id)).all())
        quotas.check(session, settings, ctx.project_id, volumes=1, snapshots=len(snapshots),
                     gigabytes=vol.size + sum(s.volume_size for s in snapshots), volume_size=vol.size)
        now = utcnow()
        vol.project_id, vol.user_id, vol.status, vol.updated_at = ctx.project_id, ctx.user_id, st.AVAILABLE, now
        for snap in snapshots:
            snap.project_id, snap.user_id, snap.updated_at = ctx.project_id, ctx.user_id, now
        view = _view(request, transfer, detail=False)
        session.delete(transfer)
        return {"transfer": view}

    return json_response(await state(request).db.run(write, write=True), status=202)

