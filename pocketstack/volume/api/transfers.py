"""`/v3/{project_id}/os-volume-transfer` (and `/volume-transfers` from 3.55): hand a volume to another project.

The owner creates a transfer and gets its auth key once (only a salted hash is kept); the volume waits in
`awaiting-transfer`; any project that presents the transfer id and the key takes the volume, and its snapshots
unless `no_snapshots`, within its own quota. Deleting the transfer gives the volume back to its owner.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field

from pocketstack.common.app import json_response
from pocketstack.common.errors import BadRequest
from pocketstack.volume.api.common import (
    all_projects,
    authorize,
    body_of,
    enforce,
    isotime,
    links,
    paginate,
    require_version,
    sort_spec,
    state,
    version,
)
from pocketstack.volume.store import transfers as store
from pocketstack.volume.store.lookups import Transfer

TRANSFER_SORT = {"id": "id", "name": "name", "created_at": "created_at", "volume_id": "volume_id"}


class TransferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    volume_id: str
    name: str | None = Field(None, max_length=255)
    no_snapshots: bool = False


class TransferAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")
    auth_key: str = Field(min_length=1, max_length=255)


def _kind(request: Request) -> str:
    return "volume-transfers" if "/volume-transfers" in request.url.path else "os-volume-transfer"


def _view(request: Request, transfer: Transfer, *, detail: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"id": transfer.id, "volume_id": transfer.volume_id, "name": transfer.name,
                            "links": links(request, _kind(request), transfer.id)}
    if detail:
        body["created_at"] = isotime(transfer.created_at)
        if version(request) >= "3.55":
            body["no_snapshots"] = transfer.no_snapshots
        if version(request) >= "3.57":
            body.update(source_project_id=transfer.project_id, destination_project_id=None, accepted=False)
    return body


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
    transfer = await store.create_transfer(
        state(request).db, ctx, authorize(request, "volume:create_transfer"),
        body.volume_id, name=body.name, no_snapshots=body.no_snapshots, auth_key=auth_key, salt=secrets.token_hex(8),
        snapshots_allowed=version(request) >= "3.55")
    return json_response({"transfer": {**_view(request, transfer), "auth_key": auth_key}}, status=202)


async def _list(request: Request, detail: bool) -> Response:
    _check_path(request)
    ctx = enforce(request, "volume:get_all_transfers")
    sort = sort_spec(request, TRANSFER_SORT)
    rows = await store.list_transfers(state(request).db, None if all_projects(request, ctx) else ctx.project_id)
    page, _, _ = paginate(request, rows, sort)
    return json_response({"transfers": [_view(request, t, detail=detail) for t in page]})


async def list_transfers(request: Request) -> Response:
    return await _list(request, detail=False)


async def list_transfers_detail(request: Request) -> Response:
    return await _list(request, detail=True)


async def show_transfer(request: Request, transfer_id: str) -> Response:
    _check_path(request)
    ctx = enforce(request, "volume:get_transfer")
    return json_response({"transfer": _view(request, await store.get_transfer(state(request).db, transfer_id, ctx))})


async def delete_transfer(request: Request, transfer_id: str) -> Response:
    _check_path(request)
    ctx = enforce(request, "volume:delete_transfer")
    await store.delete_transfer(
        state(request).db, transfer_id, ctx,
        authorize(request, "volume:delete_transfer"))
    return Response(status_code=202)


async def accept_transfer(request: Request, transfer_id: str) -> Response:
    """Take the volume with the auth key: it (and its snapshots) now belong to the caller's project."""
    _check_path(request)
    ctx = enforce(request, "volume:accept_transfer")
    body = await body_of(request, "accept", TransferAccept)
    transfer = await store.accept_transfer(state(request).db, state(request).settings, ctx, transfer_id,
                                           body.auth_key)
    return json_response({"transfer": _view(request, transfer, detail=False)}, status=202)
