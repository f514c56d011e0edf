"""Helpers shared by the image routes: the manager, attribute validation, content types, JSON bodies."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from pocketstack.common.app import json_body
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Forbidden, UnsupportedMediaType
from pocketstack.image.formats import CONTAINER_FORMATS, DISK_FORMATS
from pocketstack.image.service import MAX_TAGS, READ_ONLY, RESERVED, RESERVED_PREFIX, VISIBILITIES, ImageManager

# Glance's schema bounds of `min_disk`/`min_ram` (32-bit signed integers).
MAX_INT = 2**31 - 1


def manager(request: Request) -> ImageManager:
    return request.app.state.manager


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def require_media_type(request: Request, *allowed: str) -> str:
    found = media_type(request)
    if found not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type {found or '(none)'} is not supported here; use {' or '.join(allowed)}.")
    return found


async def json_object(request: Request, what: str) -> dict[str, Any]:
    """The request's JSON body, which must be an object (400 otherwise)."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest(f"The request body must be a JSON object describing the {what}.")
    return body


def check_writable(name: str) -> None:
    if name in READ_ONLY:
        raise Forbidden(f"Attribute '{name}' is read-only.")
    if name in RESERVED or name.startswith(RESERVED_PREFIX):
        raise Forbidden(f"Attribute '{name}' is reserved.")


def validate_attr(name: str, value: Any, ctx: RequestContext) -> Any:
    """Validate one attribute value (core or custom) as the image schema does; return the value to store."""
    if name in ("name",):
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise BadRequest("Invalid input for 'name': it must be a string of at most 255 characters or null.")
        return value
    if name == "visibility":
        if value not in VISIBILITIES:
            raise BadRequest(f"Invalid visibility value {value!r}: one of {', '.join(VISIBILITIES)}.")
        return value
    if name in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise BadRequest(f"Invalid input for '{name}': {value!r} is not of type 'boolean'.")
        return value
    if name in ("min_disk", "min_ram"):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
            raise BadRequest(f"Invalid input for '{name}': it must be an integer from 0 to {MAX_INT}.")
        return value
    if name == "disk_format":
        if value is not None and value not in DISK_FORMATS:
            raise BadRequest(f"Invalid value {value!r} for 'disk_format': one of {', '.join(DISK_FORMATS)}.")
        return value
    if name == "container_format":
        if value is not None and value not in CONTAINER_FORMATS:
            raise BadRequest(f"Invalid value {value!r} for 'container_format': one of "
                             f"{', '.join(CONTAINER_FORMATS)}.")
        return value
    if name == "owner":
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise BadRequest("Invalid input for 'owner': it must be a string of at most 255 characters.")
        if value != ctx.project_id and not ctx.is_admin:
            raise Forbidden("You are not permitted to set the owner of an image to another project.")
        return value
    if name == "tags":
        if not isinstance(value, list) or not all(isinstance(t, str) and 0 < len(t) <= 255 for t in value):
            raise BadRequest("Invalid input for 'tags': it must be a list of strings of 1 to 255 characters.")
        tags = list(dict.fromkeys(value))
        if len(tags) > MAX_TAGS:
            raise BadRequest(f"An image may have at most {MAX_TAGS} tags.")
        return tags
    if not name or len(name) > 255:
        raise BadRequest("Property names must have 1 to 255 characters.")
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for property '{name}': {value!r} is not of type 'string'.")
    return value
