"""Version discovery and `/v3/auth/*`: token issue, validate, check, revoke; the caller's catalog and scopes."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.errors import BadRequest, Forbidden, NotFound, Unauthorized
from pocketstack.identity.api.common import collection, domain_body, enforce, manager, project_body
from pocketstack.identity.store.catalog import catalog_for
from pocketstack.identity.store.roles import has_system_role, scopes_of
from pocketstack.identity.tokens import TokenPayload

VERSION_ID = "v3.14"
MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]


def _version(request: Request) -> dict[str, Any]:
    href = f"{request.url.scheme}://{request.url.netloc}/v3/"
    return {"id": VERSION_ID, "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": href}], "media-types": MEDIA_TYPES}


async def versions(request: Request) -> Response:
    return json_response({"versions": {"values": [_version(request)]}}, status=300)


async def version_v3(request: Request) -> Response:
    return json_response({"version": _version(request)})


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name)
    return value is not None and value.lower() not in ("false", "0", "no")


async def issue_token(request: Request) -> Response:
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("auth"), dict):
        raise BadRequest("Invalid input: 'auth' is a required property.")
    mgr = manager(request)
    payload = await mgr.authenticate(body["auth"])
    request.scope["state"]["trace_audit_id"] = payload.audit_ids[0]  # links steps 1-2 to what the token does
    token = mgr.tokens.encode(payload)
    ctx = await mgr.auth_context(payload)
    data = mgr.token_body(payload, ctx, catalog=not _flag(request, "nocatalog"))
    return json_response({"token": data}, status=201, headers={"X-Subject-Token": token})


async def _subject(request: Request, allow_expired: bool = False) -> tuple[str, TokenPayload, dict[str, Any]]:
    subject = request.headers.get("x-subject-token")
    if not subject:
        raise BadRequest("Invalid input: the X-Subject-Token header is required.")
    try:
        payload, ctx = await manager(request).validate(subject, allow_expired=allow_expired)
    except (Unauthorized, NotFound):
        raise NotFound("Could not find token.")
    return subject, payload, ctx


async def validate_token(request: Request) -> Response:
    subject, payload, ctx = await _subject(request, allow_expired=_flag(request, "allow_expired"))
    enforce(request, "identity:validate_token", {"token": {"user_id": payload.user_id}})
    data = manager(request).token_body(payload, ctx, catalog=not _flag(request, "nocatalog"))
    return json_response({"token": data}, headers={"X-Subject-Token": subject})


async def check_token(request: Request) -> Response:
    _, payload, _ = await _subject(request)
    enforce(request, "identity:check_token", {"token": {"user_id": payload.user_id}})
    return Response(status_code=200)


async def revoke_token(request: Request) -> Response:
    _, payload, _ = await _subject(request)
    enforce(request, "identity:revoke_token", {"token": {"user_id": payload.user_id}})
    await manager(request).revoke_token(payload)
    return Response(status_code=204)


async def auth_catalog(request: Request) -> Response:
    ctx = request_context(request)
    if not ctx.project_id:  # as Keystone: no catalog for a domain or system scope
        raise Forbidden("A project-scoped token is required to produce a service catalog.")
    catalog = await catalog_for(manager(request).db, ctx.project_id)
    return collection(request, "catalog", catalog)


async def auth_projects(request: Request) -> Response:
    ctx = request_context(request)
    mine = await scopes_of(manager(request).db, ctx.user_id, "projects")
    return collection(request, "projects", [project_body(request, p) for p in mine])


async def auth_domains(request: Request) -> Response:
    ctx = request_context(request)
    mine = await scopes_of(manager(request).db, ctx.user_id, "domains")
    return collection(request, "domains", [domain_body(request, d) for d in mine])


async def auth_system(request: Request) -> Response:
    ctx = request_context(request)
    held = await has_system_role(manager(request).db, ctx.user_id or "")
    return collection(request, "system", [{"all": True}] if held else [])
