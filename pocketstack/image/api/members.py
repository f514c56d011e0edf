"""Image members: the owner shares an image (visibility `shared`) with projects, which accept or reject it."""

from __future__ import annotations

from fastapi import Request, Response

from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Forbidden, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.image.api.common import manager
from pocketstack.image.service import MEMBER_STATUSES, member_body
from pocketstack.image.store import Image, ImageMember


def _field(body: object, name: str) -> str:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value or len(value) > 255:
        raise BadRequest(f"Invalid input: '{name}' is required and must be a non-empty string.")
    return value


def _own_member(ctx: RequestContext, image: Image, member: ImageMember | None, member_id: str) -> ImageMember:
    """The membership, if the caller is the image's owner, that member, or admin (else 404)."""
    if member is None or (not ctx.is_admin and ctx.project_id not in (image.owner, member_id)):
        raise NotFound(f"Project {member_id} is not a member of image {image.id}.")
    return member


async def add_member(request: Request, image_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    member_id = _field(await json_body(request), "member")

    def check(image: Image) -> None:
        mgr.enforce("add_member", ctx, image, member_id=member_id)
        mgr.require_owner(ctx, image, "share")
        if image.visibility != "shared":
            raise Forbidden(f"Only shared images have members; image {image_id} is {image.visibility}.")

    return json_response(member_body(await mgr.images.add_member(ctx, image_id, member_id, check)))


async def list_members(request: Request, image_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    members = await mgr.images.members(ctx, image_id, lambda image: mgr.enforce("get_members", ctx, image))
    return json_response({"members": [member_body(x) for x in members], "schema": "/v2/schemas/members"})


async def show_member(request: Request, image_id: str, member_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)

    def show(image: Image, member: ImageMember | None) -> ImageMember:
        mgr.enforce("get_member", ctx, image, member_id=member_id)
        return _own_member(ctx, image, member, member_id)

    return json_response(member_body(await mgr.images.member(ctx, image_id, member_id, show, write=False)))


async def update_member(request: Request, image_id: str, member_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    status = _field(await json_body(request), "status")
    if status not in MEMBER_STATUSES:
        raise BadRequest(f"Invalid member status {status!r}: one of {', '.join(MEMBER_STATUSES)}.")

    def change(image: Image, found: ImageMember | None) -> ImageMember:
        member = _own_member(ctx, image, found, member_id)
        mgr.enforce("modify_member", ctx, image, member_id=member_id)
        member.status, member.updated_at = status, utcnow()
        return member

    return json_response(member_body(await mgr.images.member(ctx, image_id, member_id, change, write=True)))


async def delete_member(request: Request, image_id: str, member_id: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)

    def check(image: Image) -> None:
        mgr.enforce("delete_member", ctx, image, member_id=member_id)
        mgr.require_owner(ctx, image, "unshare")

    await mgr.images.delete_member(ctx, image_id, member_id, check)
    return Response(status_code=204)
