"""Image members: the owner shares an image (visibility `shared`) with projects, which accept or reject it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.errors import BadRequest, Conflict, Forbidden, NotFound
from pocketstack.image import models as m
from pocketstack.image.api.common import manager
from pocketstack.image.service import MEMBER_STATUSES, member_body, utcnow

router = APIRouter(prefix="/v2")


def _field(body: object, name: str) -> str:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value or len(value) > 255:
        raise BadRequest(f"Invalid input: '{name}' is required and must be a non-empty string.")
    return value


@router.post("/images/{image_id}/members")
async def add_member(request: Request, image_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    member_id = _field(await json_body(request), "member")
    async with mgr.db.session(write=True) as session:
        image = await session.run_sync(mgr.get_image, ctx, image_id)
        mgr.enforce("add_member", ctx, image, member_id=member_id)
        mgr.require_owner(ctx, image, "share")
        if image.visibility != "shared":
            raise Forbidden(f"Only shared images have members; image {image_id} is {image.visibility}.")
        if await session.get(m.ImageMember, (image_id, member_id)) is not None:
            raise Conflict(f"Project {member_id} is already a member of image {image_id}.")
        now = utcnow()
        member = m.ImageMember(image_id=image_id, member=member_id, status="pending", created_at=now,
                               updated_at=now)
        session.add(member)
    return json_response(member_body(member))


@router.get("/images/{image_id}/members")
async def list_members(request: Request, image_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    async with mgr.db.session(write=False) as session:
        image = await session.run_sync(mgr.get_image, ctx, image_id)
        mgr.enforce("get_members", ctx, image)
        query = select(m.ImageMember).where(m.ImageMember.image_id == image_id).order_by(m.ImageMember.created_at)
        if not ctx.is_admin and image.owner != ctx.project_id:  # a member sees only itself
            query = query.where(m.ImageMember.member == ctx.project_id)
        members = list((await session.execute(query)).scalars())
    return json_response({"members": [member_body(x) for x in members], "schema": "/v2/schemas/members"})


@router.get("/images/{image_id}/members/{member_id}")
async def show_member(request: Request, image_id: str, member_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    async with mgr.db.session(write=False) as session:
        image = await session.run_sync(mgr.get_image, ctx, image_id)
        mgr.enforce("get_member", ctx, image, member_id=member_id)
        member = await session.get(m.ImageMember, (image_id, member_id))
        if member is None or (not ctx.is_admin and ctx.project_id not in (image.owner, member_id)):
            raise NotFound(f"Project {member_id} is not a member of image {image_id}.")
    return json_response(member_body(member))


@router.put("/images/{image_id}/members/{member_id}")
async def update_member(request: Request, image_id: str, member_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    status = _field(await json_body(request), "status")
    if status not in MEMBER_STATUSES:
        raise BadRequest(f"Invalid member status {status!r}: one of {', '.join(MEMBER_STATUSES)}.")
    async with mgr.db.session(write=True) as session:
        image = await session.run_sync(mgr.get_image, ctx, image_id)
        member = await session.get(m.ImageMember, (image_id, member_id))
        if member is None or (not ctx.is_admin and ctx.project_id not in (image.owner, member_id)):
            raise NotFound(f"Project {member_id} is not a member of image {image_id}.")
        mgr.enforce("modify_member", ctx, image, member_id=member_id)
        member.status, member.updated_at = status, utcnow()
    return json_response(member_body(member))


@router.delete("/images/{image_id}/members/{member_id}", status_code=204)
async def delete_member(request: Request, image_id: str, member_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        image = await session.run_sync(mgr.get_image, ctx, image_id)
        mgr.enforce("delete_member", ctx, image, member_id=member_id)
        mgr.require_owner(ctx, image, "unshare")
        member = await session.get(m.ImageMember, (image_id, member_id))
        if member is None:
            raise NotFound(f"Project {member_id} is not a member of image {image_id}.")
        await session.delete(member)
    return Response(status_code=204)
