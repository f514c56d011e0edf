"""The JSON schemas of metadata definitions, `/v2/schemas/metadefs/{name}` (Glance's names and shapes)."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from pocketstack.common.app import json_response
from pocketstack.common.errors import NotFound
from pocketstack.image.api.metadefs import NAME_MAX, NS_VISIBILITIES, PROPERTY_TYPES

_STR = {"type": "string"}
_TIMES = {"created_at": {"type": "string", "readOnly": True, "format": "date-time"},
          "updated_at": {"type": "string", "readOnly": True, "format": "date-time"}}


def _property_schema() -> dict[str, Any]:
    return {"type": "object", "required": ["title", "type"], "properties": {
        "name": {"type": "string", "maxLength": NAME_MAX}, "title": _STR, "description": _STR,
        "operators": {"type": "array", "items": _STR}, "type": {"type": "string", "enum": list(PROPERTY_TYPES)},
        "required": {"type": "array", "items": _STR, "uniqueItems": True},
        "minimum": {"type": "number"}, "maximum": {"type": "number"}, "maxLength": {"type": "integer"},
        "minLength": {"type": "integer"}, "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"}, "readonly": {"type": "boolean"}, "default": {},
        "items": {"type": "object", "properties": {"type": {"type": "string", "enum": list(PROPERTY_TYPES)},
                                                   "enum": {"type": "array"}}},
        "maxItems": {"type": "integer"}, "minItems": {"type": "integer"}, "uniqueItems": {"type": "boolean"},
        "additionalItems": {"type": "boolean"}}, "additionalProperties": False}


def _association_schema() -> dict[str, Any]:
    return {"name": "resource_type_association", "properties": {
        "name": {"type": "string", "maxLength": NAME_MAX}, "prefix": {"type": "string", "maxLength": NAME_MAX},
        "properties_target": {"type": "string", "maxLength": NAME_MAX}, **_TIMES},
        "required": ["name"], "additionalProperties": False}


def _object_schema() -> dict[str, Any]:
    return {"name": "object", "properties": {
        "name": {"type": "string", "maxLength": NAME_MAX}, "description": _STR,
        "required": {"type": "array", "items": _STR}, "properties": {
            "type": "object", "additionalProperties": _property_schema()},
        "schema": {"type": "string", "readOnly": True}, "self": {"type": "string", "readOnly": True}, **_TIMES},
        "required": ["name"], "additionalProperties": False}


def _tag_schema() -> dict[str, Any]:
    return {"name": "tag", "properties": {"name": {"type": "string", "maxLength": NAME_MAX}, **_TIMES},
            "required": ["name"], "additionalProperties": False}


def _namespace_schema() -> dict[str, Any]:
    return {"name": "namespace", "properties": {
        "namespace": {"type": "string", "maxLength": NAME_MAX}, "display_name": {"type": "string",
                                                                                  "maxLength": NAME_MAX},
        "description": {"type": "string", "maxLength": 500},
        "visibility": {"type": "string", "enum": list(NS_VISIBILITIES)}, "protected": {"type": "boolean"},
        "owner": {"type": "string", "maxLength": 255}, **_TIMES,
        "schema": {"type": "string", "readOnly": True}, "self": {"type": "string", "readOnly": True},
        "resource_type_associations": {"type": "array", "items": _association_schema()},
        "properties": {"type": "object", "additionalProperties": _property_schema()},
        "objects": {"type": "array", "items": _object_schema()},
        "tags": {"type": "array", "items": _tag_schema()}},
        "required": ["namespace"], "additionalProperties": False}


def _collection(name: str, key: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "properties": {key: {"type": "array", "items": item}, "schema": _STR,
                                         "first": _STR, "next": _STR},
            "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}]}


SCHEMAS: dict[str, dict[str, Any]] = {
    "namespace": _namespace_schema(),
    "namespaces": _collection("namespaces", "namespaces", _namespace_schema()),
    "resource_type": _association_schema(),
    "resource_types": _collection("resource_type_associations", "resource_type_associations",
                                  _association_schema()),
    "object": _object_schema(),
    "objects": _collection("objects", "objects", _object_schema()),
    "property": {"name": "property", **_property_schema()},
    "properties": {"name": "properties", "properties": {
        "properties": {"type": "object", "additionalProperties": _property_schema()}, "schema": _STR}},
    "tag": _tag_schema(),
    "tags": _collection("tags", "tags", _tag_schema()),
}


async def schema(name: str) -> Response:
    if name not in SCHEMAS:
        raise NotFound(f"No schema named metadefs/{name}.")
    return json_response(SCHEMAS[name])
