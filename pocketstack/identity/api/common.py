"""Helpers shared by the identity routes: the manager, policy, links and entity bodies."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from pocketstack.common.app import json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest
from pocketstack.identity.service import IdentityManager
from pocketstack.identity.store.common import (
    ApplicationCredential,
    CatalogService,
    Domain,
    Endpoint,
    Group,
    Project,
    Region,
    Role,
    User,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class Open(BaseModel):
    """Keystone keeps unknown attributes of most entities as 'extra'."""

    model_config = ConfigDict(extra="allow")


Name = Field(min_length=1, max_length=255)


def manager(request: Request) -> IdentityManager:
    return request.app.state.manager


def enforce(request: Request, action: str, target: dict[str, Any] | None = None) -> RequestContext:
    ctx = request_context(request)
    manager(request).policy.enforce(action, ctx, {"target": target or {}})
    return ctx


def base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}/v3"


def link(request: Request, path: str) -> dict[str, str]:
    return {"self": f"{base(request)}/{path}"}


def collection(request: Request, key: str, items: list[dict[str, Any]]) -> Any:
    url = f"{base(request)}{request.url.path[3:]}"
    if request.url.query:
        url += "?" + request.url.query
    return json_response({key: items, "links": {"self": url, "previous": None, "next": None}})


def extra_of(body: BaseModel, exclude: set[str] | None = None) -> dict[str, Any]:
    extra = dict(body.model_extra or {})
    for key in exclude or ():
        extra.pop(key, None)
    return extra


def parse_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ("true", "1", "yes", "on", ""):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"Invalid input: {value!r} is not a boolean.")


def wrapped(body: Any, key: str) -> dict[str, Any]:
    """The entity object of a request body (`{"role": {...}}`); 400 when it is missing or not an object."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(f"Invalid input: '{key}' is a required property and must be an object.")
    return body[key]


def domain_body(request: Request, d: Domain) -> dict[str, Any]:
    return {**(d.extra or {}), "id": d.id, "name": d.name, "description": d.description, "enabled": d.enabled,
            "tags": [], "options": {}, "links": link(request, f"domains/{d.id}")}


def project_body(request: Request, p: Project) -> dict[str, Any]:
    return {**(p.extra or {}), "id": p.id, "name": p.name, "domain_id": p.domain_id,
            "description": p.description, "enabled": p.enabled, "parent_id": p.parent_id or p.domain_id,
            "is_domain": False, "tags": list(p.tags or []), "options": {},
            "links": link(request, f"projects/{p.id}")}


def user_body(request: Request, u: User) -> dict[str, Any]:
    body = {**(u.extra or {}), "id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
            "password_expires_at": None, "options": {}, "links": link(request, f"users/{u.id}")}
    if u.default_project_id:
        body["default_project_id"] = u.default_project_id
    if u.description:
        body["description"] = u.description
    if u.email:
        body["email"] = u.email
    return body


def group_body(request: Request, g: Group) -> dict[str, Any]:
    return {**(g.extra or {}), "id": g.id, "name": g.name, "domain_id": g.domain_id, "description": g.description,
            "links": link(request, f"groups/{g.id}")}


def role_body(request: Request, r: Role) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "domain_id": r.domain_id, "description": r.description, "options": {},
            "links": link(request, f"roles/{r.id}")}


def region_body(request: Request, r: Region) -> dict[str, Any]:
    return {**(r.extra or {}), "id": r.id, "description": r.description, "parent_region_id": r.parent_region_id,
            "links": link(request, f"regions/{r.id}")}


def service_body(request: Request, s: CatalogService) -> dict[str, Any]:
    return {"id": s.id, "type": s.type, "name": s.name, "description": s.description, "enabled": s.enabled,
            "links": link(request, f"services/{s.id}")}


def endpoint_body(request: Request, e: Endpoint) -> dict[str, Any]:
    return {"id": e.id, "interface": e.interface, "region_id": e.region_id, "region": e.region_id, "url": e.url,
            "service_id": e.service_id, "enabled": e.enabled, "links": link(request, f"endpoints/{e.id}")}


def app_cred_body(request: Request, c: ApplicationCredential) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "description": c.description or None, "user_id": c.user_id,
            "project_id": c.project_id, "roles": c.roles,
            "expires_at": c.expires_at.isoformat() if c.expires_at else None,  # as Keystone: no zone suffix
            "unrestricted": c.unrestricted, "access_rules": [],
            "links": link(request, f"users/{c.user_id}/application_credentials/{c.id}")}
