"""Application credentials: a user delegates (some of) its roles on one project to a secret a tool can hold."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response
from pydantic import Field, StrictBool

from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.errors import APIError, BadRequest, Forbidden, NotFound
from pocketstack.identity.api.common import Strict, app_cred_body, collection, enforce, link, manager, wrapped
from pocketstack.identity.service import new_id, utcnow
from pocketstack.identity.store import access_rules
from pocketstack.identity.store import app_creds as store
from pocketstack.identity.store.common import ApplicationCredential, User, fetch
from pocketstack.identity.store.roles import held_roles


class AppCredCreate(Strict):
    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    secret: str | None = Field(None, min_length=1, max_length=72)
    expires_at: datetime | None = None
    roles: list[dict[str, Any]] | None = None
    unrestricted: StrictBool = False
    access_rules: list[dict[str, Any]] | None = None


async def create_app_cred(request: Request, user_id: str) -> Response:
    enforce(request, "identity:create_application_credential", {"user": {"id": user_id}})
    ctx = request_context(request)
    if ctx.application_credential_id and not ctx.roles:
        raise Forbidden("Application credentials cannot create application credentials.")
    if not ctx.project_id:
        raise Forbidden("Creating an application credential needs a project-scoped token.")
    data = AppCredCreate.model_validate(wrapped(await json_body(request), "application_credential"))
    expires_at = None
    if data.expires_at is not None:
        expires_at = (data.expires_at.astimezone(UTC) if data.expires_at.tzinfo else
                      data.expires_at.replace(tzinfo=UTC)).replace(tzinfo=None)
        if expires_at <= utcnow():
            raise BadRequest("Invalid input: 'expires_at' is in the past.")
    mgr = manager(request)
    held = await held_roles(mgr.db, user_id, ctx.project_id)
    if not data.roles:  # none given: every role of the caller's token, as Keystone does
        roles = [{"id": rid, "name": name} for rid, name in held.items() if name in ctx.roles]
    else:
        roles = []
        for ref in data.roles:
            match = [(rid, name) for rid, name in held.items() if ref.get("id") == rid or ref.get("name") == name]
            if not match:
                raise BadRequest(f"Invalid input: the user does not hold role {ref.get('id') or ref.get('name')} "
                                 f"on project {ctx.project_id}.")
            roles.append({"id": match[0][0], "name": match[0][1]})
    secret = data.secret or secrets.token_urlsafe(64)[:72]
    secret_hash = await mgr.hash_secret(secret)
    cred = await store.create_app_cred(mgr.db, {
        "id": new_id(), "name": data.name, "user_id": user_id, "project_id": ctx.project_id,
        "secret_hash": secret_hash, "description": data.description or "", "expires_at": expires_at,
        "unrestricted": data.unrestricted, "roles": roles, "created_at": utcnow()})
    body = app_cred_body(request, cred)
    if data.access_rules:
        try:
            body["access_rules"] = await access_rules.attach(mgr.db, user_id, cred.id, data.access_rules, new_id)
        except APIError:  # a rule refused: the credential goes too
            await store.delete_app_cred(mgr.db, mgr, user_id, cred.id)
            raise
    body["secret"] = secret
    return json_response({"application_credential": body}, status=201)


async def list_app_creds(request: Request, user_id: str, name: str | None = None) -> Response:
    enforce(request, "identity:list_application_credentials", {"user": {"id": user_id}})
    await fetch(manager(request).db, User, user_id, "user")  # an unknown user is 404, as Keystone's
    rows = await store.list_app_creds(manager(request).db, user_id, name)
    rules, by_cred = await access_rules.of_user(manager(request).db, user_id)
    return collection(request, "application_credentials",
                      [_with_rules(request, c, rules, by_cred) for c in rows])


def _with_rules(request: Request, cred: ApplicationCredential, rules: dict[str, dict[str, Any]],
                by_cred: dict[str, list[str]]) -> dict[str, Any]:
    body = app_cred_body(request, cred)
    body["access_rules"] = [rules[i] for i in by_cred.get(cred.id, []) if i in rules]
    return body


async def get_app_cred(request: Request, user_id: str, cred_id: str) -> Response:
    enforce(request, "identity:get_application_credential", {"user": {"id": user_id}})
    cred = await store.get_app_cred(manager(request).db, user_id, cred_id)
    rules, by_cred = await access_rules.of_user(manager(request).db, user_id)
    return json_response({"application_credential": _with_rules(request, cred, rules, by_cred)})


async def list_access_rules(request: Request, user_id: str) -> Response:
    enforce(request, "identity:list_access_rules", {"user": {"id": user_id}})
    rules, _ = await access_rules.of_user(manager(request).db, user_id)
    return collection(request, "access_rules", [_rule_body(request, user_id, r) for r in rules.values()])


def _rule_body(request: Request, user_id: str, rule: dict[str, Any]) -> dict[str, Any]:
    return {**rule, "links": link(request, f"users/{user_id}/access_rules/{rule['id']}")}


async def get_access_rule(request: Request, user_id: str, rule_id: str) -> Response:
    enforce(request, "identity:get_access_rule", {"user": {"id": user_id}})
    rules, _ = await access_rules.of_user(manager(request).db, user_id)
    if rule_id not in rules:
        raise NotFound(f"Could not find access rule: {rule_id}.")
    return json_response({"access_rule": _rule_body(request, user_id, rules[rule_id])})


async def delete_access_rule(request: Request, user_id: str, rule_id: str) -> Response:
    enforce(request, "identity:delete_access_rule", {"user": {"id": user_id}})
    await access_rules.delete_rule(manager(request).db, user_id, rule_id)
    return Response(status_code=204)


async def delete_app_cred(request: Request, user_id: str, cred_id: str) -> Response:
    enforce(request, "identity:delete_application_credential", {"user": {"id": user_id}})
    mgr = manager(request)
    await store.delete_app_cred(mgr.db, mgr, user_id, cred_id)
    return Response(status_code=204)
