"""`/servers/{id}/metadata` (merge, replace, one key; quota metadata_items) and `/servers/{id}/tags` (2.26)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request, Response

from pocketstack.common import apikit
from pocketstack.common.app import json_response, request_context
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.compute import states
from pocketstack.compute.api.common import links, state
from pocketstack.compute.bodies import wrapped

MAX_TAGS = 50  # Nova's per-server limit
META_STATES = (states.ACTIVE, states.PAUSED, states.SUSPENDED, states.STOPPED)


# ----- metadata ---------------------------------------------------------------------------------------------
def check_items(items: Any, key: str) -> dict[str, str]:
    """Metadata as Nova takes it: an object of 1-255 character keys to strings of at most 255 characters."""
    if not isinstance(items, dict):
        raise BadRequest(f"Invalid input for field/attribute {key}: it must be an object")
    for name, value in items.items():
        if not 1 <= len(name) <= 255:
            raise BadRequest(f"Invalid input for field/attribute {key}. Value: {name}. Metadata keys must be 1-255 "
                             "characters")
        if not isinstance(value, str) or len(value) > 255:
            raise BadRequest(f"Invalid input for field/attribute {name}: the value must be a string of at most 255 "
                             "characters")
    return items


def _allowed(request: Request, policy: str) -> Callable[[Any], None]:
    """The check that the caller may `policy` on the server."""
    ctx, engine = request_context(request), state(request).policy
    return lambda inst: engine.enforce(policy, ctx, {"project_id": inst.project_id})


def _writable(request: Request, policy: str) -> Callable[[Any], None]:
    """The check that the caller may change the server's metadata now (Nova: not locked, stable state, no task)."""
    ctx, allowed = request_context(request), _allowed(request, policy)

    def check(inst: Any) -> None:
        allowed(inst)
        if inst.locked and not ctx.is_admin:
            raise Conflict(f"Instance {inst.uuid} is locked")
        if inst.vm_state not in META_STATES or inst.task_state is not None:
            raise Conflict(f"Cannot 'update metadata' instance {inst.uuid} while it is in vm_state {inst.vm_state}")

    return check


async def list_metadata(request: Request, server_id: str) -> Response:
    metadata = await state(request).server_meta.metadata(
        server_id, request_context(request), _allowed(request, "os_compute_api:server-metadata:index"))
    return json_response({"metadata": metadata})


async def merge_metadata(request: Request, server_id: str) -> Response:
    items = check_items(await wrapped(request, "metadata"), "metadata")
    merged = await state(request).server_meta.set_metadata(
        server_id, request_context(request), _writable(request, "os_compute_api:server-metadata:create"), items,
        merge=True)
    return json_response({"metadata": merged})


async def replace_metadata(request: Request, server_id: str) -> Response:
    items = check_items(await wrapped(request, "metadata"), "metadata")
    await state(request).server_meta.set_metadata(
        server_id, request_context(request), _writable(request, "os_compute_api:server-metadata:update_all"),
        items, merge=False)
    return json_response({"metadata": items})


async def show_metadata_item(request: Request, server_id: str, key: str) -> Response:
    value = await state(request).server_meta.metadata_item(
        server_id, request_context(request), _allowed(request, "os_compute_api:server-metadata:show"), key)
    if value is None:
        raise NotFound("Metadata item was not found")
    return json_response({"meta": {key: value}})


async def set_metadata_item(request: Request, server_id: str, key: str) -> Response:
    item = check_items(await wrapped(request, "meta"), "meta")
    if len(item) > 1:
        raise BadRequest("Request body contains too many items")
    if key not in item:
        raise BadRequest("Request body and URI mismatch")
    await state(request).server_meta.set_metadata(
        server_id, request_context(request), _writable(request, "os_compute_api:server-metadata:update"), item,
        merge=True)
    return json_response({"meta": item})


async def delete_metadata_item(request: Request, server_id: str, key: str) -> Response:
    await state(request).server_meta.delete_metadata_item(
        server_id, request_context(request), _writable(request, "os_compute_api:server-metadata:delete"), key)
    return Response(status_code=204)


# ----- tags (2.26) ------------------------------------------------------------------------------------------
def _check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not 1 <= len(tag) <= 60 or "/" in tag or "," in tag or not tag.isprintable():
        raise BadRequest(f"Invalid input for field/attribute tag. Value: {tag}. A tag is 1-60 printable "
                         "characters without '/' or ','")
    return tag


def _tag_check(request: Request, policy: str) -> Callable[[Any], None]:
    """The check of a tag route: 404 before 2.26, then the policy on the server."""
    if apikit.version(request) < "2.26":
        raise NotFound("Server tags need microversion 2.26 or later.")
    return _allowed(request, policy)


async def list_tags(request: Request, server_id: str) -> Response:
    check = _tag_check(request, "os_compute_api:os-server-tags:index")
    return json_response({"tags": await state(request).server_meta.tags(server_id, request_context(request), check)})


async def replace_tags(request: Request, server_id: str) -> Response:
    raw = await wrapped(request, "tags")
    if not isinstance(raw, list):
        raise BadRequest("Invalid input for field/attribute tags: it must be a list")
    tags = list(dict.fromkeys(_check_tag(t) for t in raw))
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
    check = _tag_check(request, "os_compute_api:os-server-tags:update_all")
    await state(request).server_meta.replace_tags(server_id, request_context(request), check, tags)
    return json_response({"tags": sorted(tags)})


async def delete_tags(request: Request, server_id: str) -> Response:
    check = _tag_check(request, "os_compute_api:os-server-tags:delete_all")
    await state(request).server_meta.replace_tags(server_id, request_context(request), check, None)
    return Response(status_code=204)


async def check_tag(request: Request, server_id: str, tag: str) -> Response:
    check = _tag_check(request, "os_compute_api:os-server-tags:show")
    uuid, found = await state(request).server_meta.has_tag(server_id, request_context(request), check, tag)
    if not found:
        raise NotFound(f"Instance {uuid} has no tag '{tag}'")
    return Response(status_code=204)


async def add_tag(request: Request, server_id: str, tag: str) -> Response:
    _check_tag(tag)
    check = _tag_check(request, "os_compute_api:os-server-tags:update")
    if not await state(request).server_meta.add_tag(server_id, request_context(request), check, tag, MAX_TAGS):
        return Response(status_code=204)
    location = f"{links(request, 'servers', server_id)[0]['href']}/tags/{tag}"
    return Response(status_code=201, headers={"Location": location})


async def delete_tag(request: Request, server_id: str, tag: str) -> Response:
    check = _tag_check(request, "os_compute_api:os-server-tags:delete")
    await state(request).server_meta.delete_tag(server_id, request_context(request), check, tag)
    return Response(status_code=204)
