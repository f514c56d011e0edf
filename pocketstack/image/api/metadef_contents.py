"""What a metadata definitions namespace holds: objects, property definitions and tags (each by name, unique in
its namespace; tag names regardless of case). Deleting any of them needs an unprotected namespace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import Request, Response

from pocketstack.common.app import json_response, request_context
from pocketstack.common.errors import BadRequest, Conflict, NotFound
from pocketstack.common.timeutils import utcnow
from pocketstack.image.api.common import json_object, manager
from pocketstack.image.api.metadefs import (
    NAME_MAX,
    association_prefix,
    known_keys,
    name_field,
    object_body,
    object_input,
    property_body,
    property_input,
    require_unprotected,
    tag_body,
    tag_names,
)
from pocketstack.image.metadef_store import MetadefObject, MetadefProperty, MetadefTag, Namespace

Named = TypeVar("Named", MetadefObject, MetadefProperty, MetadefTag)


def _find(items: Sequence[Named], name: str, missing: str) -> Named:
    found = next((item for item in items if item.name == name), None)
    if found is None:
        raise NotFound(missing)
    return found


def _object_missing(ns: str, name: str) -> str:
    return f"Metadata definition object not found for namespace={ns} and object={name}."


def _property_missing(ns: str, name: str) -> str:
    return f"Metadata definition property={name} not found for namespace={ns}."


def _tag_missing(ns: str, name: str) -> str:
    return f"Metadata definition tag={name} not found for namespace={ns}."


def _object_free(ns: Namespace, name: str, keep: MetadefObject | None = None) -> None:
    if any(o.name == name and o is not keep for o in ns.objects):
        raise Conflict(f"A metadata definition object with name={name} already exists in namespace="
                       f"{ns.namespace}.")


def _property_free(ns: Namespace, name: str, keep: MetadefProperty | None = None) -> None:
    if any(p.name == name and p is not keep for p in ns.properties):
        raise Conflict(f"A metadata definition property with name={name} already exists in namespace="
                       f"{ns.namespace}.")


def _tag_free(ns: Namespace, name: str, keep: MetadefTag | None = None) -> None:
    if any(t.name.lower() == name.lower() and t is not keep for t in ns.tags):
        raise Conflict(f"A metadata tag with name={name} already exists in namespace={ns.namespace}. (Please "
                       "note that metadata tag names are case insensitive).")


# ----- objects -------------------------------------------------------------------------------------------
async def list_objects(request: Request, namespace: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    ns = await mgr.metadefs.get(ctx, namespace)
    mgr.enforce_metadef("get_metadef_objects", ctx, ns)
    return json_response({"objects": [object_body(namespace, o) for o in ns.objects],
                          "schema": "/v2/schemas/metadefs/objects"})


async def create_object(request: Request, namespace: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    name, description, required, properties = object_input(await json_object(request, "object"))

    def create(ns: Namespace) -> dict[str, Any]:
        mgr.enforce_metadef("add_metadef_object", ctx, ns)
        _object_free(ns, name)
        now = utcnow()
        obj = MetadefObject(name=name, description=description, required=required, properties=properties,
                            created_at=now, updated_at=now)
        ns.objects.append(obj)
        return object_body(namespace, obj)

    return json_response(await mgr.metadefs.change(ctx, namespace, create), status=201)


async def show_object(request: Request, namespace: str, object_name: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    ns = await mgr.metadefs.get(ctx, namespace)
    mgr.enforce_metadef("get_metadef_object", ctx, ns)
    return json_response(object_body(namespace, _find(ns.objects, object_name,
                                                      _object_missing(namespace, object_name))))


async def update_object(request: Request, namespace: str, object_name: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    name, description, required, properties = object_input(await json_object(request, "object"))

    def update(ns: Namespace) -> dict[str, Any]:
        mgr.enforce_metadef("modify_metadef_object", ctx, ns)
        obj = _find(ns.objects, object_name, _object_missing(namespace, object_name))
        _object_free(ns, name, keep=obj)
        obj.name, obj.description, obj.required, obj.properties = name, description, required, properties
        obj.updated_at = utcnow()
        return object_body(namespace, obj)

    return json_response(await mgr.metadefs.change(ctx, namespace, update))


async def delete_object(request: Request, namespace: str, object_name: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)

    def delete(ns: Namespace) -> None:
        mgr.enforce_metadef("delete_metadef_object", ctx, ns)
        require_unprotected(ns, f"object {object_name}")
        ns.objects.remove(_find(ns.objects, object_name, _object_missing(namespace, object_name)))

    await mgr.metadefs.change(ctx, namespace, delete)
    return Response(status_code=204)


async def delete_objects(request: Request, namespace: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)

    def delete(ns: Namespace) -> None:
        mgr.enforce_metadef("delete_metadef_objects", ctx, ns)
        require_unprotected(ns)
        ns.objects.clear()

    await mgr.metadefs.change(ctx, namespace, delete)
    return Response(status_code=204)


# ----- properties ----------------------------------------------------------------------------------------
async def list_properties(request: Request, namespace: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    ns = await mgr.metadefs.get(ctx, namespace)
    mgr.enforce_metadef("get_metadef_properties", ctx, ns)
    return json_response({"properties": {p.name: property_body(p, with_name=False) for p in ns.properties},
                          "schema": "/v2/schemas/metadefs/properties"})


async def create_property(request: Request, namespace: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    name, definition = property_input(await json_object(request, "property"))

    def create(ns: Namespace) -> dict[str, Any]:
        mgr.enforce_metadef("add_metadef_property", ctx, ns)
        _property_free(ns, name)
        now = utcnow()
        prop = MetadefProperty(name=name, schema=definition, created_at=now, updated_at=now)
        ns.properties.append(prop)
        return property_body(prop)

    return json_response(await mgr.metadefs.change(ctx, namespace, create), status=201)


async def show_property(request: Request, namespace: str, property_name: str) -> Response:
    """A property; `resource_type` names an associated resource type whose prefix the name carries."""
    ctx = request_context(request)
    mgr = manager(request)
    ns = await mgr.metadefs.get(ctx, namespace)
    mgr.enforce_metadef("get_metadef_property", ctx, ns)
    name = property_name
    prefix = association_prefix(ns, request.query_params.get("resource_type"))
    if prefix:
        if not name.startswith(prefix):
            raise NotFound(f"Property {property_name} does not start with the expected resource type association "
                           f"prefix of '{prefix}'.")
        name = name[len(prefix):]
    return json_response(property_body(_find(ns.properties, name, _property_missing(namespace, property_name))))


async def update_property(request: Request, namespace: str, property_name: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    name, definition = property_input(await json_object(request, "property"))

    def update(ns: Namespace) -> dict[str, Any]:
        mgr.enforce_metadef("modify_metadef_property", ctx, ns)
        prop = _find(ns.properties, property_name, _property_missing(namespace, property_name))
        _property_free(ns, name, keep=prop)
        prop.name, prop.schema, prop.updated_at = name, definition, utcnow()
        return property_body(prop)

    return json_response(await mgr.metadefs.change(ctx, namespace, update))


async def delete_property(request: Request, namespace: str, property_name: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)

    def delete(ns: Namespace) -> None:
        mgr.enforce_metadef("remove_metadef_property", ctx, ns)
        require_unprotected(ns, f"property {property_name}")
        ns.properties.remove(_find(ns.properties, property_name, _property_missing(namespace, property_name)))

    await mgr.metadefs.change(ctx, namespace, delete)
    return Response(status_code=204)


async def delete_properties(request: Request, namespace: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)

    def delete(ns: Namespace) -> None:
        mgr.enforce_metadef("remove_metadef_properties", ctx, ns)
        require_unprotected(ns)
        ns.properties.clear()

    await mgr.metadefs.change(ctx, namespace, delete)
    return Response(status_code=204)


# ----- tags ----------------------------------------------------------------------------------------------
async def list_tags(request: Request, namespace: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    ns = await mgr.metadefs.get(ctx, namespace)
    mgr.enforce_metadef("get_metadef_tags", ctx, ns)
    return json_response({"tags": [tag_body(t) for t in ns.tags]})


async def create_tags(request: Request, namespace: str) -> Response:
    """Several tags at once: they replace the namespace's tags, or join them with `X-Openstack-Append: true`."""
    ctx = request_context(request)
    mgr = manager(request)
    body = await json_object(request, "tags")
    if "tags" not in body:
        raise BadRequest("Invalid input: 'tags' is required.")
    names = tag_names(body["tags"])
    append = request.headers.get("x-openstack-append", "false").strip().lower()
    if append not in ("true", "false"):
        raise BadRequest(f"Invalid X-Openstack-Append header {append!r}: true or false.")

    def create(ns: Namespace) -> dict[str, Any]:
        mgr.enforce_metadef("add_metadef_tags", ctx, ns)
        now = utcnow()
        if append == "true":
            for name in names:
                _tag_free(ns, name)
            added = [MetadefTag(name=name, created_at=now, updated_at=now) for name in names]
            ns.tags.extend(added)
        else:  # a replaced tag of the same name keeps its row (a delete and insert would collide in one flush)
            kept = {t.name.lower(): t for t in ns.tags}
            added = [kept.get(name.lower()) or MetadefTag(name=name, created_at=now) for name in names]
            for tag, name in zip(added, names, strict=True):
                tag.name, tag.updated_at = name, now
            ns.tags[:] = added
        return {"tags": [tag_body(t) for t in added]}

    return json_response(await mgr.metadefs.change(ctx, namespace, create), status=201)


def _tag_name(name: str) -> str:
    if not name.strip() or len(name) > NAME_MAX:
        raise BadRequest(f"Invalid tag name {name!r}: 1 to {NAME_MAX} characters.")
    return name


async def create_tag(request: Request, namespace: str, tag_name: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    name = _tag_name(tag_name)

    def create(ns: Namespace) -> dict[str, Any]:
        mgr.enforce_metadef("add_metadef_tag", ctx, ns)
        _tag_free(ns, name)
        now = utcnow()
        tag = MetadefTag(name=name, created_at=now, updated_at=now)
        ns.tags.append(tag)
        return tag_body(tag)

    return json_response(await mgr.metadefs.change(ctx, namespace, create), status=201)


async def show_tag(request: Request, namespace: str, tag_name: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    ns = await mgr.metadefs.get(ctx, namespace)
    mgr.enforce_metadef("get_metadef_tag", ctx, ns)
    return json_response(tag_body(_find(ns.tags, tag_name, _tag_missing(namespace, tag_name))))


async def update_tag(request: Request, namespace: str, tag_name: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    body = await json_object(request, "tag")
    known_keys(body, ("name",), "tag")
    name = name_field(body)

    def update(ns: Namespace) -> dict[str, Any]:
        mgr.enforce_metadef("modify_metadef_tag", ctx, ns)
        tag = _find(ns.tags, tag_name, _tag_missing(namespace, tag_name))
        _tag_free(ns, name, keep=tag)
        tag.name, tag.updated_at = name, utcnow()
        return tag_body(tag)

    return json_response(await mgr.metadefs.change(ctx, namespace, update))


async def delete_tag(request: Request, namespace: str, tag_name: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)

    def delete(ns: Namespace) -> None:
        mgr.enforce_metadef("delete_metadef_tag", ctx, ns)
        require_unprotected(ns, f"tag {tag_name}")
        ns.tags.remove(_find(ns.tags, tag_name, _tag_missing(namespace, tag_name)))

    await mgr.metadefs.change(ctx, namespace, delete)
    return Response(status_code=204)


async def delete_tags(request: Request, namespace: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)

    def delete(ns: Namespace) -> None:
        mgr.enforce_metadef("delete_metadef_tags", ctx, ns)
        require_unprotected(ns)
        ns.tags.clear()

    await mgr.metadefs.change(ctx, namespace, delete)
    return Response(status_code=204)
