"""Version discovery (`/`, `/versions`, `/v2`), `/v2/info/*` and the JSON schemas of `/v2/schemas/*`."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common.app import json_response, request_context
from pocketstack.common.errors import NotFound
from pocketstack.image.api.common import manager
from pocketstack.image.formats import CONTAINER_FORMATS, DISK_FORMATS
from pocketstack.image.service import IMPORT_METHODS, MEMBER_STATUSES, VISIBILITIES

CURRENT_MINOR = 16  # Image API v2.16
PUBLIC_PATHS = {("GET", "/"), ("GET", "/versions"), ("GET", "/v2"), ("GET", "/v2/")}


def _versions(request: Request) -> dict[str, Any]:
    href = f"{request.url.scheme}://{request.url.netloc}/v2/"
    return {"versions": [
        {"id": f"v2.{minor}", "status": "CURRENT" if minor == CURRENT_MINOR else "SUPPORTED",
         "links": [{"rel": "self", "href": href}]}
        for minor in range(CURRENT_MINOR, -1, -1)]}


async def root_versions(request: Request) -> Response:
    return json_response(_versions(request), status=300)


async def v2_versions(request: Request) -> Response:
    return json_response(_versions(request))


async def import_info(request: Request) -> Response:
    return json_response({"import-methods": {
        "description": "Import methods available.", "type": "array", "value": list(IMPORT_METHODS)}})


async def stores_info(request: Request) -> Response:
    store = manager(request).store
    return json_response({"stores": [{"id": store.id, "description": store.description, "default": True}]})


async def usage_info(request: Request) -> Response:
    """The caller's project quota usage (Glance's unified-limits usage API)."""
    ctx = request_context(request)
    mgr = manager(request)
    mgr.enforce("get_usage", ctx)
    count, size = await mgr.images.usage(ctx.project_id)
    settings = mgr.settings.image
    return json_response({"usage": {
        "image_count_total": {"limit": settings.quota_image_count, "usage": count},
        "image_size_total": {"limit": settings.quota_image_bytes, "usage": size}}})


def _image_schema() -> dict[str, Any]:
    nullable_str = {"type": ["null", "string"], "maxLength": 255}
    props: dict[str, Any] = {
        "id": {"type": "string", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
               "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$", "description": "An identifier for the image"},
        "name": {**nullable_str, "description": "Descriptive name for the image"},
        "status": {"type": "string", "readOnly": True, "enum": [
            "queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete",
            "deactivated"]},
        "visibility": {"type": "string", "enum": list(VISIBILITIES)},
        "protected": {"type": "boolean"}, "os_hidden": {"type": "boolean"},
        "checksum": {"type": ["null", "string"], "readOnly": True, "maxLength": 32},
        "os_hash_algo": {"type": ["null", "string"], "readOnly": True, "maxLength": 64},
        "os_hash_value": {"type": ["null", "string"], "readOnly": True, "maxLength": 128},
        "owner": {**nullable_str},
        "size": {"type": ["null", "integer"], "readOnly": True},
        "virtual_size": {"type": ["null", "integer"], "readOnly": True},
        "container_format": {"type": ["null", "string"], "enum": [None, *CONTAINER_FORMATS]},
        "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS]},
        "created_at": {"type": "string", "readOnly": True}, "updated_at": {"type": "string", "readOnly": True},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
        "min_ram": {"type": "integer"}, "min_disk": {"type": "integer"},
        "self": {"type": "string", "readOnly": True}, "file": {"type": "string", "readOnly": True},
        "schema": {"type": "string", "readOnly": True},
        "stores": {"type": "string", "readOnly": True},
    }
    return {"name": "image", "properties": props, "additionalProperties": {"type": "string"},
            "links": [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
                      {"rel": "describedby", "href": "{schema}"}]}


def _member_schema() -> dict[str, Any]:
    return {"name": "member", "properties": {
        "image_id": {"type": "string"}, "member_id": {"type": "string"},
        "status": {"type": "string", "enum": list(MEMBER_STATUSES)}, "created_at": {"type": "string"},
        "updated_at": {"type": "string"}, "schema": {"type": "string", "readOnly": True}}}


def _task_schema() -> dict[str, Any]:
    text = {"type": "string"}
    return {"name": "task", "properties": {
        "id": {"type": "string"}, "type": {"type": "string", "enum": ["import", "api_image_import"]},
        "status": {"type": "string", "enum": ["pending", "processing", "success", "failure"]},
        "input": {"type": ["null", "object"]}, "result": {"type": ["null", "object"]},
        "owner": text, "message": text, "image_id": text, "request_id": text, "user_id": text,
        "expires_at": {"type": ["null", "string"]}, "created_at": text, "updated_at": text,
        "self": text, "schema": text}}


SCHEMAS = {
    "image": _image_schema(),
    "images": {"name": "images", "properties": {
        "images": {"type": "array", "items": _image_schema()}, "schema": {"type": "string"},
        "first": {"type": "string"}, "next": {"type": "string"}},
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}]},
    "task": _task_schema(),
    "tasks": {"name": "tasks", "properties": {
        "tasks": {"type": "array", "items": _task_schema()}, "schema": {"type": "string"},
        "first": {"type": "string"}, "next": {"type": "string"}},
        "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                  {"rel": "describedby", "href": "{schema}"}]},
    "member": _member_schema(),
    "members": {"name": "members", "properties": {
        "members": {"type": "array", "items": _member_schema()}, "schema": {"type": "string"}},
        "links": [{"rel": "describedby", "href": "{schema}"}]},
}


async def schema(name: str) -> Response:
    if name not in SCHEMAS:
        raise NotFound(f"No schema named {name}.")
    return json_response(SCHEMAS[name])
