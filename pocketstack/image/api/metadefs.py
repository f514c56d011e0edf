"""Metadata definitions (Glance's metadefs): namespaces and resource type associations, and what every metadefs
handler shares: the views of the records and the parsing of property definitions, objects and tags. Their own
handlers are in `metadef_contents.py`, the `/v2/schemas/metadefs/*` schemas in `metadef_schemas.py`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request, Response

from pocketstack.common.app import json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest, Conflict, Forbidden
from pocketstack.common.timeutils import utcnow
from pocketstack.image.api.common import json_object, manager
from pocketstack.image.metadef_store import (
    NAMESPACE_SORT_KEYS,
    Association,
    AssociationSpec,
    MetadefObject,
    MetadefProperty,
    MetadefTag,
    Namespace,
    NamespaceQuery,
    ResourceType,
)
from pocketstack.image.service import isotime

NS_VISIBILITIES = ("public", "private")
NAME_MAX = 80  # Glance's column width of namespace, object, property, tag and resource type names
DEFAULT_LIMIT, MAX_LIMIT = 25, 1000
READ_ONLY = ("created_at", "updated_at", "schema", "self")


# ----- views ---------------------------------------------------------------------------------------------
def ns_href(ns: str) -> str:
    return f"/v2/metadefs/namespaces/{quote(ns, safe=':')}"


def _times(record: Any) -> dict[str, Any]:
    return {"created_at": isotime(record.created_at), "updated_at": isotime(record.updated_at)}


def association_body(a: Association) -> dict[str, Any]:
    body: dict[str, Any] = {"name": a.resource_type.name}
    body.update({k: v for k, v in (("prefix", a.prefix), ("properties_target", a.properties_target)) if v})
    return {**body, **_times(a)}


def property_body(p: MetadefProperty, *, with_name: bool = True) -> dict[str, Any]:
    return {"name": p.name, **p.schema} if with_name else dict(p.schema)


def object_body(ns: str, o: MetadefObject, *, links: bool = True, prefix: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"name": o.name}
    if o.description is not None:
        body["description"] = o.description
    body.update({"required": [prefix + r for r in o.required],
                 "properties": {prefix + k: v for k, v in o.properties.items()}, **_times(o)})
    if links:
        body.update({"self": f"{ns_href(ns)}/objects/{quote(o.name, safe='')}",
                     "schema": "/v2/schemas/metadefs/object"})
    return body


def tag_body(t: MetadefTag) -> dict[str, Any]:
    return {"name": t.name, **_times(t)}


def namespace_body(ns: Namespace, *, contents: bool = False, prefix: str = "") -> dict[str, Any]:
    """A namespace as the API shows it; with `contents` (show, create) its properties, objects and tags too,
    property names with `prefix` (a resource type's). Unset attributes and empty collections are left out, as
    Glance does."""
    body: dict[str, Any] = {"namespace": ns.namespace}
    body.update({k: v for k, v in (("display_name", ns.display_name), ("description", ns.description))
                 if v is not None})
    body.update({"visibility": ns.visibility, "protected": ns.protected, "owner": ns.owner, **_times(ns),
                 "self": ns_href(ns.namespace), "schema": "/v2/schemas/metadefs/namespace"})
    if ns.associations:
        body["resource_type_associations"] = [association_body(a) for a in ns.associations]
    if contents:
        if ns.properties:
            body["properties"] = {prefix + p.name: property_body(p, with_name=False) for p in ns.properties}
        if ns.objects:
            body["objects"] = [object_body(ns.namespace, o, links=False, prefix=prefix) for o in ns.objects]
        if ns.tags:
            body["tags"] = [{"name": t.name} for t in ns.tags]
    return body


def resource_type_body(rt: ResourceType) -> dict[str, Any]:
    return {"name": rt.name, **_times(rt)}


# ----- input ---------------------------------------------------------------------------------------------
def name_field(body: dict[str, Any], key: str = "name", *, most: int = NAME_MAX) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > most:
        raise BadRequest(f"Invalid input for '{key}': it is required, a string of 1 to {most} characters.")
    return value


def text_field(body: dict[str, Any], key: str, most: int) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > most):
        raise BadRequest(f"Invalid input for '{key}': it must be a string of at most {most} characters.")
    return value


def bool_field(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise BadRequest(f"Invalid input for '{key}': {value!r} is not of type 'boolean'.")
    return value


def known_keys(body: dict[str, Any], allowed: tuple[str, ...], what: str) -> None:
    """403 for a read-only attribute, 400 for one the record does not have."""
    for key in READ_ONLY:
        if key in body:
            raise Forbidden(f"Attribute '{key}' is read-only.")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(f"Additional properties are not allowed in a {what}: {', '.join(unknown)}.")


def require_unprotected(ns: Namespace, what: str | None = None) -> None:
    """Nothing in a protected namespace is deleted: `what` ("object X", ...) or, by default, the namespace."""
    if ns.protected:
        raise Forbidden(f"Metadata definition {what or 'namespace ' + ns.namespace} is protected and cannot be "
                        "deleted.")


def _association_spec(item: Any) -> AssociationSpec:
    if not isinstance(item, dict):
        raise BadRequest("A resource type association is an object with a 'name'.")
    known_keys(item, ("name", "prefix", "properties_target"), "resource type association")
    return AssociationSpec(name_field(item), text_field(item, "prefix", NAME_MAX),
                           text_field(item, "properties_target", NAME_MAX))


# property definitions: JSON schema keywords a definition may use, and the type each must have
PROPERTY_TYPES = ("array", "boolean", "integer", "number", "object", "string")
NUMBER = (int, float)
PROPERTY_KEYS: dict[str, tuple[type, ...]] = {
    "title": (str,), "description": (str,), "type": (str,), "enum": (list,), "default": (object,),
    "minimum": NUMBER, "maximum": NUMBER, "minLength": (int,), "maxLength": (int,), "pattern": (str,),
    "readonly": (bool,), "operators": (list,), "items": (dict,), "uniqueItems": (bool,), "minItems": (int,),
    "maxItems": (int,), "additionalItems": (bool,), "required": (list,)}


def property_definition(body: Any, where: str) -> dict[str, Any]:
    """A property definition (without its name) checked as Glance's property schema does: title and type
    required, known keywords only, each of its type."""
    if not isinstance(body, dict):
        raise BadRequest(f"Invalid property definition {where}: it must be an object.")
    for key, value in body.items():
        if key not in PROPERTY_KEYS:
            raise BadRequest(f"Invalid property definition {where}: additional property {key!r} is not allowed.")
        kinds = PROPERTY_KEYS[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds and object not in kinds):
            raise BadRequest(f"Invalid property definition {where}: {key!r} has the wrong type.")
    if not isinstance(body.get("title"), str) or not body["title"]:
        raise BadRequest(f"Invalid property definition {where}: 'title' is required.")
    if body.get("type") not in PROPERTY_TYPES:
        raise BadRequest(f"Invalid property definition {where}: 'type' must be one of {', '.join(PROPERTY_TYPES)}.")
    items = body.get("items")
    if items is not None and (set(items) - {"type", "enum"} or items.get("type", "string") not in PROPERTY_TYPES):
        raise BadRequest(f"Invalid property definition {where}: 'items' takes a 'type' and an 'enum'.")
    return body


def property_input(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(name, definition) of a property create or update body."""
    name = name_field(body)
    return name, property_definition({k: v for k, v in body.items() if k != "name"}, f"of {name}")


def object_input(body: Any) -> tuple[str, str | None, list[str], dict[str, Any]]:
    """(name, description, required, properties) of an object."""
    if not isinstance(body, dict):
        raise BadRequest("An object definition must be a JSON object.")
    known_keys(body, ("name", "description", "required", "properties"), "object")
    name = name_field(body)
    required = body.get("required") or []
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise BadRequest("Invalid input for 'required': it must be a list of property names.")
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise BadRequest("Invalid input for 'properties': it must map property names to definitions.")
    return name, text_field(body, "description", 65535), required, {
        key: property_definition(value, f"{key} of object {name}") for key, value in props.items()}


def tag_names(items: Any) -> list[str]:
    """The names of a list of tags ({"name": ...} each), unique regardless of case."""
    if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
        raise BadRequest("Invalid input for 'tags': it must be a list of objects with a 'name'.")
    for tag in items:
        known_keys(tag, ("name",), "tag")
    names = [name_field(t) for t in items]
    if len({n.lower() for n in names}) != len(names):
        raise Conflict("Duplicate tag names in the request (metadata tag names are case insensitive).")
    return names


def fill_namespace(ns: Namespace, body: dict[str, Any]) -> None:
    """The properties, objects and tags a namespace create body brings with it."""
    now = utcnow()
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise BadRequest("Invalid input for 'properties': it must map property names to definitions.")
    for name, definition in props.items():
        name_field({"name": name})
        ns.properties.append(MetadefProperty(name=name, schema=property_definition(definition, f"of {name}"),
                                             created_at=now, updated_at=now))
    objects = body.get("objects") or []
    if not isinstance(objects, list):
        raise BadRequest("Invalid input for 'objects': it must be a list of objects.")
    for item in objects:
        name, description, required, properties = object_input(item)
        if any(o.name == name for o in ns.objects):
            raise Conflict(f"A metadata definition object with name={name} already exists in namespace="
                           f"{ns.namespace}.")
        ns.objects.append(MetadefObject(name=name, description=description, required=required,
                                        properties=properties, created_at=now, updated_at=now))
    for name in tag_names(body.get("tags") or []):
        ns.tags.append(MetadefTag(name=name, created_at=now, updated_at=now))


# ----- namespaces ----------------------------------------------------------------------------------------
NAMESPACE_KEYS = ("namespace", "display_name", "description", "visibility", "protected", "owner",
                  "resource_type_associations", "properties", "objects", "tags")


def _namespace_attrs(body: dict[str, Any], ctx: RequestContext, current: Namespace | None) -> dict[str, Any]:
    """The namespace's own attributes from a create or update body (update: what it leaves out resets to
    the defaults, as a PUT of the whole namespace does, except the owner, which stays)."""
    known_keys(body, NAMESPACE_KEYS, "namespace")  # an update ignores the contents (they have their own calls)
    visibility = body.get("visibility", "private")
    if visibility not in NS_VISIBILITIES:
        raise BadRequest(f"Invalid visibility value {visibility!r}: public or private.")
    owner = text_field(body, "owner", 255)
    default_owner = current.owner if current is not None else ctx.project_id
    if owner is not None and owner != default_owner and not ctx.is_admin:
        raise Forbidden("You are not permitted to set the owner of a namespace to another project.")
    return {"namespace": name_field(body, "namespace"), "display_name": text_field(body, "display_name", NAME_MAX),
            "description": text_field(body, "description", 500), "visibility": visibility,
            "protected": bool_field(body, "protected", False), "owner": owner or default_owner}


async def create_namespace(request: Request) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    body = await json_object(request, "namespace")
    now = utcnow()
    ns = Namespace(**_namespace_attrs(body, ctx, None), created_at=now, updated_at=now, objects=[],
                   properties=[], tags=[], associations=[])
    mgr.enforce_metadef("add_metadef_namespace", ctx, ns)
    associations = body.get("resource_type_associations") or []
    if not isinstance(associations, list):
        raise BadRequest("Invalid input for 'resource_type_associations': it must be a list.")
    specs = [_association_spec(item) for item in associations]
    if len({s.name for s in specs}) != len(specs):
        raise BadRequest("A resource type may be associated with a namespace only once.")
    fill_namespace(ns, body)
    await mgr.metadefs.add(ns, specs)
    return json_response(namespace_body(ns, contents=True), status=201,
                         headers={"Location": ns_href(ns.namespace)})


def _int_param(params: Any, name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise BadRequest(f"Invalid value {raw!r} for '{name}': a non-negative integer is required.")
    return int(raw)


async def list_namespaces(request: Request) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    mgr.enforce_metadef("get_metadef_namespaces", ctx)
    params = request.query_params
    visibility = params.get("visibility")
    if visibility is not None and visibility not in NS_VISIBILITIES:
        raise BadRequest(f"Invalid visibility value {visibility!r}: public or private.")
    sort_key, sort_dir = params.get("sort_key", "created_at"), params.get("sort_dir", "desc")
    if sort_key not in NAMESPACE_SORT_KEYS:
        raise BadRequest(f"Invalid sort key {sort_key!r}: one of {', '.join(NAMESPACE_SORT_KEYS)}.")
    if sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort direction {sort_dir!r}: asc or desc.")
    limit = _int_param(params, "limit")
    limit = DEFAULT_LIMIT if limit is None else min(limit, MAX_LIMIT)
    query = NamespaceQuery(
        visibility=visibility, sort_key=sort_key, sort_dir=sort_dir, marker=params.get("marker") or None,
        resource_types=[t.strip() for t in params.get("resource_types", "").split(",") if t.strip()],
        limit=limit)
    rows = await mgr.metadefs.namespaces(ctx, query)
    page = rows[:limit]
    kept = [(k, v) for k, v in params.multi_items() if k != "marker"]
    body: dict[str, Any] = {"namespaces": [namespace_body(ns) for ns in page],
                            "first": "/v2/metadefs/namespaces" + (f"?{urlencode(kept)}" if kept else ""),
                            "schema": "/v2/schemas/metadefs/namespaces"}
    if len(rows) > limit and page:
        body["next"] = "/v2/metadefs/namespaces?" + urlencode(
            [*[(k, v) for k, v in kept if k != "limit"], ("marker", page[-1].namespace), ("limit", str(limit))])
    return json_response(body)


async def show_namespace(request: Request, namespace: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    ns = await mgr.metadefs.get(ctx, namespace)
    mgr.enforce_metadef("get_metadef_namespace", ctx, ns)
    return json_response(namespace_body(ns, contents=True, prefix=association_prefix(
        ns, request.query_params.get("resource_type"))))


def association_prefix(ns: Namespace, resource_type: str | None) -> str:
    """The prefix property names take on a resource type the namespace is associated with ("" for none)."""
    found = next((a for a in ns.associations if a.resource_type.name == resource_type), None)
    return (found.prefix or "") if found is not None else ""


async def update_namespace(request: Request, namespace: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    body = await json_object(request, "namespace")
    new_name = name_field(body, "namespace")

    def update(ns: Namespace) -> dict[str, Any]:
        mgr.enforce_metadef("modify_metadef_namespace", ctx, ns)
        for key, value in _namespace_attrs(body, ctx, ns).items():
            setattr(ns, key, value)
        ns.updated_at = utcnow()
        return namespace_body(ns, contents=True)

    return json_response(await mgr.metadefs.change(ctx, namespace, update, rename=new_name))


async def delete_namespace(request: Request, namespace: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)

    def check(ns: Namespace) -> None:
        mgr.enforce_metadef("delete_metadef_namespace", ctx, ns)
        require_unprotected(ns)

    await mgr.metadefs.delete(ctx, namespace, check)
    return Response(status_code=204)


# ----- resource types ------------------------------------------------------------------------------------
async def list_resource_types(request: Request) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    mgr.enforce_metadef("list_metadef_resource_types", ctx)
    return json_response({"resource_types": [resource_type_body(rt) for rt in await mgr.metadefs.resource_types()]})


async def list_associations(request: Request, namespace: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    ns = await mgr.metadefs.get(ctx, namespace)
    mgr.enforce_metadef("get_metadef_resource_type", ctx, ns)
    return json_response({"resource_type_associations": [association_body(a) for a in ns.associations]})


async def create_association(request: Request, namespace: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)
    spec = _association_spec(await json_object(request, "resource type association"))

    def check(ns: Namespace) -> None:
        mgr.enforce_metadef("add_metadef_resource_type_association", ctx, ns)

    association = await mgr.metadefs.associate(ctx, namespace, spec, check)
    return json_response(association_body(association), status=201)


async def delete_association(request: Request, namespace: str, resource_type: str) -> Response:
    ctx = request_context(request)
    mgr = manager(request)

    def check(ns: Namespace) -> None:
        mgr.enforce_metadef("remove_metadef_resource_type_association", ctx, ns)
        require_unprotected(ns, f"resource-type-association {resource_type}")

    await mgr.metadefs.dissociate(ctx, namespace, resource_type, check)
    return Response(status_code=204)
