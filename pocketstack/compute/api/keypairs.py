"""`/os-keypairs`: import or generate SSH key pairs (type ssh since 2.2, other users' for admins since 2.10,
pagination since 2.35), with Nova's MD5 fingerprint and the key_pairs quota."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pocketstack.common.apikit import enforce, iso_micro, version
from pocketstack.common.app import json_response, request_context
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import BadRequest
from pocketstack.compute.api.common import limit_param, next_link, state
from pocketstack.compute.bodies import parse
from pocketstack.compute.store.keypairs import KeyPair, KeypairStore

NAME_RE = re.compile(r"^[a-zA-Z0-9 _-]+$")
SSH_KEY_TYPES = ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")


class KeyPairCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    public_key: str | None = Field(None, max_length=65535)
    type: Literal["ssh", "x509"] | None = None
    user_id: str | None = Field(None, min_length=1, max_length=255)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value.strip() != value or not NAME_RE.match(value):
            raise ValueError("Keypair name contains unsafe characters: use letters, digits, '_', '-' and inner "
                             "spaces")
        return value


def fingerprint(public_key: str) -> str:
    """Nova's fingerprint of an OpenSSH public key: MD5 of the key blob as colon-separated hex.

    The key must load with `cryptography` and be of a type Nova accepts; otherwise 400 as Nova answers.
    """
    parts = public_key.strip().split()
    try:
        if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
            raise ValueError("unsupported key type")
        serialization.load_ssh_public_key(" ".join(parts[:2]).encode())
        blob = base64.b64decode(parts[1], validate=True)
    except (ValueError, binascii.Error, TypeError):
        raise BadRequest("Keypair data is invalid: failed to generate fingerprint")
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def generate_key_pair() -> tuple[str, str]:
    """A new RSA 2048 key pair as Nova makes it: (private key PEM, OpenSSH public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} Generated-by-Nova"


def _keypairs(request: Request) -> KeypairStore:
    return KeypairStore(state(request).db)


def _target_user(request: Request, ctx: RequestContext, requested: str | None, action: str) -> str:
    """The user whose key pairs are meant: the caller's, or (admins, 2.10+) the one named by `user_id`."""
    if requested is not None and version(request) < "2.10":
        raise BadRequest("Invalid input: 'user_id' needs microversion 2.10 or later.")
    user_id = requested or ctx.user_id
    enforce(request, state(request), f"os_compute_api:os-keypairs:{action}",
            {"user_id": user_id, "project_id": ctx.project_id})
    return user_id


def _view(request: Request, kp: KeyPair, full: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"name": kp.name, "public_key": kp.public_key, "fingerprint": kp.fingerprint}
    if version(request) >= "2.2":
        body["type"] = kp.type
    if full:
        body.update({"user_id": kp.user_id, "id": kp.id, "created_at": iso_micro(kp.created_at),
                     "deleted": False, "deleted_at": None, "updated_at": None})
    return body


async def create_keypair(request: Request) -> Response:
    ctx = request_context(request)
    body = await parse(request, "keypair", KeyPairCreate)
    ver = version(request)
    if body.type is not None and ver < "2.2":
        raise BadRequest("Invalid input: 'type' needs microversion 2.2 or later.")
    if body.type == "x509":
        raise BadRequest("Keypair data is invalid: x509 certificates are not supported by this cloud")
    user_id = _target_user(request, ctx, body.user_id, "create")
    private_key = None
    if body.public_key is None:
        private_key, public_key = generate_key_pair()
    else:
        public_key = body.public_key.strip()
    keypair = await _keypairs(request).create(state(request).settings, ctx.project_id, user_id, body.name,
                                              public_key, fingerprint(public_key))
    result = {"name": keypair.name, "public_key": keypair.public_key, "fingerprint": keypair.fingerprint,
              "user_id": keypair.user_id}
    if ver >= "2.2":
        result["type"] = keypair.type
    if private_key is not None:
        result["private_key"] = private_key
    return json_response({"keypair": result}, status=201 if ver >= "2.2" else 200)


async def list_keypairs(request: Request) -> Response:
    ctx = request_context(request)
    user_id = _target_user(request, ctx, request.query_params.get("user_id"), "index")
    paginated = version(request) >= "2.35"
    limit = limit_param(request) if paginated else 100000
    marker = request.query_params.get("marker") if paginated else None
    rows = await _keypairs(request).page(user_id, marker, limit)
    items = [_view(request, kp, full=False) for kp in rows]
    body: dict[str, Any] = {"keypairs": [{"keypair": item} for item in items]}
    more = next_link(request, "os-keypairs", items, limit, key="name") if paginated else []
    if more:
        body["keypairs_links"] = more
    return json_response(body)


async def show_keypair(request: Request, name: str) -> Response:
    ctx = request_context(request)
    user_id = _target_user(request, ctx, request.query_params.get("user_id"), "show")
    return json_response({"keypair": _view(request, await _keypairs(request).get(user_id, name), full=True)})


async def delete_keypair(request: Request, name: str) -> Response:
    ctx = request_context(request)
    user_id = _target_user(request, ctx, request.query_params.get("user_id"), "delete")
    await _keypairs(request).delete(user_id, name)
    return Response(status_code=204 if version(request) >= "2.2" else 202)
