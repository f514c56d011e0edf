"""Credentials (`/v3/credentials`) and EC2 key pairs (`/v3/users/{user_id}/credentials/OS-EC2`)."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from fastapi import Request, Response
from pydantic import Field

from pocketstack.common.app import json_body, json_response, request_context
from pocketstack.common.errors import BadRequest
from pocketstack.identity.api.common import Open, Strict, collection, enforce, link, manager, wrapped
from pocketstack.identity.service import new_id
from pocketstack.identity.store import credentials as store
from pocketstack.identity.store.common import Credential


class CredentialCreate(Open):
    user_id: str = Field(min_length=1, max_length=64)
    type: str = Field(min_length=1, max_length=255)
    blob: str
    project_id: str | None = None
    id: str | None = None


class CredentialUpdate(Open):
    user_id: str | None = Field(None, min_length=1, max_length=64)
    type: str | None = Field(None, min_length=1, max_length=255)
    blob: str | None = None
    project_id: str | None = None


def _body(request: Request, cred: Credential) -> dict[str, Any]:
    return {**(cred.extra or {}), "id": cred.id, "user_id": cred.user_id, "project_id": cred.project_id,
            "type": cred.type, "blob": manager(request).decrypt_blob(cred.encrypted_blob),
            "links": link(request, f"credentials/{cred.id}")}


def _ec2_access(blob: str, project_id: str | None) -> str:
    """An ec2 credential needs a project and a blob that is a JSON object with an 'access' key; its id is the
    SHA-256 of the access key, as Keystone makes it."""
    try:
        data = json.loads(blob)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("access"), str):
        raise BadRequest("Invalid input: an ec2 credential's blob must be a JSON object with an 'access' key.")
    if not project_id:
        raise BadRequest("Invalid input: an ec2 credential needs a 'project_id'.")
    return data["access"]


async def create_credential(request: Request) -> Response:
    data = CredentialCreate.model_validate(wrapped(await json_body(request), "credential"))
    enforce(request, "identity:create_credential", {"credential": {"user_id": data.user_id}})
    cred_id = data.id or new_id()
    if data.type == "ec2":
        cred_id = hashlib.sha256(_ec2_access(data.blob, data.project_id).encode()).hexdigest()
    mgr = manager(request)
    cred = await store.create(mgr.db, {"id": cred_id, "user_id": data.user_id, "project_id": data.project_id,
                                       "type": data.type, "encrypted_blob": mgr.encrypt_blob(data.blob),
                                       "extra": {k: v for k, v in (data.model_extra or {}).items()}})
    return json_response({"credential": _body(request, cred)}, status=201)


async def list_credentials(request: Request, user_id: str | None = None, type: str | None = None) -> Response:
    ctx = request_context(request)
    policy = manager(request).policy
    if not policy.check("identity:list_credentials", ctx, {"target": {"credential": {"user_id": user_id}}}):
        # anyone else than a reader of everything lists their own
        enforce(request, "identity:list_credentials", {"credential": {"user_id": ctx.user_id}})
        user_id = ctx.user_id
    rows = await store.list_credentials(manager(request).db, user_id, type)
    return collection(request, "credentials", [_body(request, c) for c in rows])


async def get_credential(request: Request, credential_id: str) -> Response:
    cred = await store.get(manager(request).db, credential_id)
    enforce(request, "identity:get_credential", {"credential": {"user_id": cred.user_id}})
    return json_response({"credential": _body(request, cred)})


async def update_credential(request: Request, credential_id: str) -> Response:
    data = CredentialUpdate.model_validate(wrapped(await json_body(request), "credential"))
    mgr = manager(request)
    cred = await store.get(mgr.db, credential_id)
    enforce(request, "identity:update_credential", {"credential": {"user_id": cred.user_id}})
    changes: dict[str, Any] = {k: v for k in ("user_id", "type", "project_id")
                               if (v := getattr(data, k)) is not None}
    if data.blob is not None:
        if (data.type or cred.type) == "ec2":
            _ec2_access(data.blob, data.project_id or cred.project_id)
        changes["encrypted_blob"] = mgr.encrypt_blob(data.blob)
    changes["extra"] = dict(data.model_extra or {})
    cred = await store.update(mgr.db, credential_id, changes)
    return json_response({"credential": _body(request, cred)})


async def delete_credential(request: Request, credential_id: str) -> Response:
    mgr = manager(request)
    cred = await store.get(mgr.db, credential_id)
    enforce(request, "identity:delete_credential", {"credential": {"user_id": cred.user_id}})
    await store.delete(mgr.db, credential_id)
    return Response(status_code=204)


# ----- OS-EC2 ----------------------------------------------------------------------------------------------
class Ec2Create(Strict):
    tenant_id: str | None = Field(None, min_length=1, max_length=64)
    project_id: str | None = Field(None, min_length=1, max_length=64)


def _ec2_body(request: Request, cred: Credential) -> dict[str, Any]:
    blob = json.loads(manager(request).decrypt_blob(cred.encrypted_blob))
    return {"user_id": cred.user_id, "tenant_id": cred.project_id, "access": blob.get("access"),
            "secret": blob.get("secret"), "trust_id": blob.get("trust_id"),
            "links": link(request, f"users/{cred.user_id}/credentials/OS-EC2/{blob.get('access')}")}


async def create_ec2(request: Request, user_id: str) -> Response:
    enforce(request, "identity:ec2_create_credential", {"user": {"id": user_id}})
    body = await json_body(request)
    data = Ec2Create.model_validate(body if isinstance(body, dict) else {})
    project_id = data.tenant_id or data.project_id
    if not project_id:
        raise BadRequest("Invalid input: 'tenant_id' is required.")
    access, secret = secrets.token_hex(16), secrets.token_hex(16)
    blob = json.dumps({"access": access, "secret": secret, "trust_id": None})
    mgr = manager(request)
    cred = await store.create(mgr.db, {"id": hashlib.sha256(access.encode()).hexdigest(), "user_id": user_id,
                                       "project_id": project_id, "type": "ec2",
                                       "encrypted_blob": mgr.encrypt_blob(blob), "extra": {}})
    return json_response({"credential": _ec2_body(request, cred)}, status=201)


async def list_ec2(request: Request, user_id: str) -> Response:
    enforce(request, "identity:ec2_list_credentials", {"user": {"id": user_id}})
    rows = await store.list_credentials(manager(request).db, user_id, "ec2")
    return collection(request, "credentials", [_ec2_body(request, c) for c in rows])


async def get_ec2(request: Request, user_id: str, access: str) -> Response:
    enforce(request, "identity:ec2_get_credential", {"credential": {"user_id": user_id}})
    cred = await store.get(manager(request).db, hashlib.sha256(access.encode()).hexdigest(), user_id)
    return json_response({"credential": _ec2_body(request, cred)})


async def delete_ec2(request: Request, user_id: str, access: str) -> Response:
    enforce(request, "identity:ec2_delete_credential", {"credential": {"user_id": user_id}})
    await store.delete(manager(request).db, hashlib.sha256(access.encode()).hexdigest(), user_id)
    return Response(status_code=204)
