"""Tags on networks, subnets, ports, routers, floating IPs, security groups and subnet pools
(`standard-attr-tag`)."""

from __future__ import annotations

from fastapi import Request, Response
from pydantic import Field, ValidationError

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.common.validation import check_text
from pocketstack.network.api.common import Body, context, describe, manager

KINDS = {"networks": "network", "subnets": "subnet", "ports": "port", "routers": "router",
         "floatingips": "floatingip", "security-groups": "security_group", "subnetpools": "subnetpool"}
class Tags(Body):
    tags: list[str] = Field(max_length=50)


def _kind(collection: str) -> str:
    if collection not in KINDS:
        raise NotFound(f"The resource could not be found: {collection} cannot be tagged.")
    return KINDS[collection]


def _check_tag(tag: str) -> str:
    if not 1 <= len(tag) <= 255 or "," in tag:
        raise BadRequest(f"Invalid input for operation: '{tag}' is not a valid tag (1-255 characters, no comma).",
                         error_type="InvalidInput")
    check_text("tag", tag)
    return tag


async def list_tags(request: Request, collection: str, resource_id: str) -> Response:
    tags = await manager(request).get_tags(context(request), _kind(collection), resource_id)
    return json_response({"tags": tags})


async def replace_tags(request: Request, collection: str, resource_id: str) -> Response:
    kind = _kind(collection)
    try:
        wanted = [_check_tag(t) for t in Tags.model_validate(await json_body(request)).tags]
    except ValidationError as exc:
        raise BadRequest(describe(exc))
    tags = await manager(request).change_tags(context(request), kind, resource_id, lambda _: wanted)
    return json_response({"tags": tags})


async def clear_tags(request: Request, collection: str, resource_id: str) -> Response:
    await manager(request).change_tags(context(request), _kind(collection), resource_id, lambda _: [])
    return Response(status_code=204)


async def check_tag(request: Request, collection: str, resource_id: str, tag: str) -> Response:
    if tag not in await manager(request).get_tags(context(request), _kind(collection), resource_id):
        raise NotFound(f"Tag {tag} could not be found.", error_type="TagNotFound")
    return Response(status_code=204)


async def add_tag(request: Request, collection: str, resource_id: str, tag: str) -> Response:
    _check_tag(tag)
    await manager(request).change_tags(context(request), _kind(collection), resource_id, lambda tags: [*tags, tag])
    return Response(status_code=201)


async def remove_tag(request: Request, collection: str, resource_id: str, tag: str) -> Response:
    def without(tags: list[str]) -> list[str]:
        if tag not in tags:
            raise NotFound(f"Tag {tag} could not be found.", error_type="TagNotFound")
        return [t for t in tags if t != tag]

    await manager(request).change_tags(context(request), _kind(collection), resource_id, without)
    return Response(status_code=204)
