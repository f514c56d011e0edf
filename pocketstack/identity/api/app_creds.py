"""Application credentials: a user delegates (some of) its roles on one project to a secret a tool can hold."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.errors import BadRequest, Conflict, Forbidden, NotFound
from pocketstack.identity import models as m
from pocketstack.identity.api.common import Strict, app_cred_body, collection, enforce, manager
from pocketstack.identity.api.resources import _get, _wrapped
from pocketstack.identity.service import new_id, utcnow


class AppCredCreate(Strict):
    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    secret: str | None = Field(None, min_length=1, max_length=72)
    expires_at: datetime | None = None
    roles: list[dict[str, Any]] | None = None
    unrestricted: bool = False
    access_rules: list[dict[str, Any]] | None = None


async def create_app_cred(request: Request, user_id: str) -> Response:
    enforce(request, "identity:create_application_credential", {"user": {"id": user_id}})
    ctx = request_context(request)
    if ctx.application_credential_id and not ctx.roles:
        raise Forbidden("Application credentials cannot create application credentials.")
    if not ctx.project_id:
        raise Forbidden("Creating an application credential needs a project-scoped token.")
    data = AppCredCreate.model_validate(_wrapped(await json_body(request), "application_credential"))
    if data.access_rules:
        raise BadRequest("Invalid input: access rules are not supported.")
    expires_at = None
    if data.expires_at is not None:
        expires_at = (data.expires_at.astimezone(UTC) if data.expires_at.tzinfo else
                      data.expires_at.replace(tzinfo=UTC)).replace(tzinfo=None)
        if expires_at <= utcnow():
            raise BadRequest("Invalid input: 'expires_at' is in the past.")
    mgr = manager(request)
    async with mgr.db.session(write=False) as session:
        held = {r.id: r.name for r in (await session.scalars(select(m.Role).where(
            m.Role.id.in_(await mgr.effective_role_ids(session, user_id, project_id=ctx.project_id))))).all()}
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
    try:
        async with mgr.db.session(write=True) as session:
            cred = m.ApplicationCredential(id=new_id(), name=data.name, user_id=user_id, project_id=ctx.project_id,
                                           secret_hash=secret_hash, description=data.description or "",
                                           expires_at=expires_at, unrestricted=data.unrestricted, roles=roles,
                                           created_at=utcnow())
            session.add(cred)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"Conflict occurred attempting to store application_credential - Duplicate entry found "
                       f"with name {data.name}.")
    body = app_cred_body(request, cred)
    body["secret"] = secret
    return json_response({"application_credential": body}, status=201)


async def list_app_creds(request: Request, user_id: str, name: str | None = None) -> Response:
    enforce(request, "identity:list_application_credentials", {"user": {"id": user_id}})
    query = select(m.ApplicationCredential).where(m.ApplicationCredential.user_id == user_id)
    if name is not None:
        query = query.where(m.ApplicationCredential.name == name)
    async with manager(request).db.session(write=False) as session:
        rows = (await session.scalars(query.order_by(m.ApplicationCredential.name))).all()
    return collection(request, "application_credentials", [app_cred_body(request, c) for c in rows])


async def _owned(session: Any, user_id: str, cred_id: str) -> m.ApplicationCredential:
    cred = await session.get(m.ApplicationCredential, cred_id)
    if cred is None or cred.user_id != user_id:
        raise NotFound(f"Could not find application credential: {cred_id}.")
    return cred


async def get_app_cred(request: Request, user_id: str, cred_id: str) -> Response:
    enforce(request, "identity:get_application_credential", {"user": {"id": user_id}})
    async with manager(request).db.session(write=False) as session:
        cred = await _owned(session, user_id, cred_id)
    return json_response({"application_credential": app_cred_body(request, cred)})


async def delete_app_cred(request: Request, user_id: str, cred_id: str) -> Response:
    enforce(request, "identity:delete_application_credential", {"user": {"id": user_id}})
    mgr = manager(request)
    async with mgr.db.session(write=True) as session:
        await _get(session, m.User, user_id, "user")
        cred = await _owned(session, user_id, cred_id)
        await session.delete(cred)
        await mgr.add_revocation(session, application_credential_id=cred_id)
    return Response(status_code=204)
