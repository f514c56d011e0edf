"""OS-TRUST: a trustor delegates roles on a project to a trustee, who gets trust-scoped tokens with them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response
from pydantic import Field, StrictBool, field_validator

from pocketstack.common.app import json_body, json_response
from pocketstack.common.errors import BadRequest, NotFound
from pocketstack.identity.api.common import Open, collection, enforce, link, manager, role_body, wrapped
from pocketstack.identity.service import isotime, new_id, utcnow
from pocketstack.identity.store import trusts as store
from pocketstack.identity.store.common import Role, Trust


class TrustCreate(Open):
    trustor_user_id: str = Field(min_length=1, max_length=64)
    trustee_user_id: str = Field(min_length=1, max_length=64)
    impersonation: StrictBool
    project_id: str | None = None
    roles: list[dict[str, Any]] = []
    expires_at: str | None = None
    remaining_uses: int | None = Field(None, ge=1)
    allow_redelegation: StrictBool = False
    redelegation_count: int | None = Field(None, ge=0)

    @field_validator("expires_at")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError("'expires_at' must be an ISO 8601 time") from None
        return value


def _expiry(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    parsed = parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    if parsed <= utcnow():
        raise BadRequest("Invalid input: 'expires_at' is in the past.")
    return parsed


def _body(request: Request, trust: Trust, roles: list[Role] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": trust.id, "trustor_user_id": trust.trustor_user_id, "trustee_user_id": trust.trustee_user_id,
        "project_id": trust.project_id, "impersonation": trust.impersonation,
        "expires_at": isotime(trust.expires_at), "remaining_uses": trust.remaining_uses,
        "allow_redelegation": trust.allow_redelegation, "redelegated_trust_id": trust.redelegated_trust_id,
        "redelegation_count": trust.redelegation_count, "links": link(request, f"OS-TRUST/trusts/{trust.id}")}
    if roles is not None:
        body["roles"] = [role_body(request, r) for r in roles]
        body["roles_links"] = {"self": f"{body['links']['self']}/roles", "previous": None, "next": None}
    return body


def _target(trust: Trust) -> dict[str, Any]:
    return {"trust": {"trustor_user_id": trust.trustor_user_id, "trustee_user_id": trust.trustee_user_id}}


async def create_trust(request: Request) -> Response:
    data = TrustCreate.model_validate(wrapped(await json_body(request), "trust"))
    enforce(request, "identity:create_trust", {"trust": {"trustor_user_id": data.trustor_user_id}})
    if data.roles and not data.project_id:
        raise BadRequest("Invalid input: a trust that delegates roles needs a 'project_id'.")
    if data.project_id and not data.roles:
        raise BadRequest("Invalid input: a trust on a project must delegate at least one role.")
    fields = {"id": new_id(), "trustor_user_id": data.trustor_user_id, "trustee_user_id": data.trustee_user_id,
              "project_id": data.project_id, "impersonation": data.impersonation,
              "expires_at": _expiry(data.expires_at), "remaining_uses": data.remaining_uses,
              "allow_redelegation": data.allow_redelegation,
              "redelegation_count": data.redelegation_count if data.allow_redelegation else None,
              "extra": {}}
    trust, roles = await store.create(manager(request).db, fields, data.roles)
    return json_response({"trust": _body(request, trust, roles)}, status=201)


async def list_trusts(request: Request, trustor_user_id: str | None = None,
                      trustee_user_id: str | None = None) -> Response:
    if trustor_user_id:
        enforce(request, "identity:list_trusts_for_trustor", {"trust": {"trustor_user_id": trustor_user_id}})
    if trustee_user_id:
        enforce(request, "identity:list_trusts_for_trustee", {"trust": {"trustee_user_id": trustee_user_id}})
    if not trustor_user_id and not trustee_user_id:
        enforce(request, "identity:list_trusts")
    rows = await store.list_trusts(manager(request).db, trustor_user_id, trustee_user_id)
    return collection(request, "trusts", [_body(request, t, None) for t, _ in rows])


async def get_trust(request: Request, trust_id: str) -> Response:
    trust, roles = await store.get(manager(request).db, trust_id)
    enforce(request, "identity:get_trust", _target(trust))
    return json_response({"trust": _body(request, trust, roles)})


async def delete_trust(request: Request, trust_id: str) -> Response:
    mgr = manager(request)
    trust, _ = await store.get(mgr.db, trust_id)
    enforce(request, "identity:delete_trust", _target(trust))
    await store.delete(mgr.db, trust_id)
    mgr.invalidate()  # its tokens stop working at once
    return Response(status_code=204)


async def list_trust_roles(request: Request, trust_id: str) -> Response:
    trust, roles = await store.get(manager(request).db, trust_id)
    enforce(request, "identity:list_roles_for_trust", _target(trust))
    return collection(request, "roles", [role_body(request, r) for r in roles])


async def _trust_role(request: Request, trust_id: str, role_id: str) -> Role:
    trust, roles = await store.get(manager(request).db, trust_id)
    enforce(request, "identity:get_role_for_trust", _target(trust))
    for role in roles:
        if role.id == role_id:
            return role
    raise NotFound(f"Could not find role: {role_id}.")


async def get_trust_role(request: Request, trust_id: str, role_id: str) -> Response:
    return json_response({"role": role_body(request, await _trust_role(request, trust_id, role_id))})


async def check_trust_role(request: Request, trust_id: str, role_id: str) -> Response:
    await _trust_role(request, trust_id, role_id)
    return Response(status_code=200)
