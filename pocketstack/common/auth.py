"""Token validation for every service, cached like keystonemiddleware with memcached (FLOW.md steps 4-5).

Each service validates the caller's token with the identity service (`GET /v3/auth/tokens`) and keeps the answer
for `auth.cache_ttl` seconds under a hash of the token, so a revoked token stops working everywhere within that
time and the cache never holds a token itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from pocketstack.common import tracing
from pocketstack.common.cache import Cache
from pocketstack.common.context import RequestContext
from pocketstack.common.errors import Unauthorized


class TokenValidator(Protocol):
    async def validate(self, token: str) -> dict[str, Any]:
        """Return the token body (Keystone's `token` object) or raise Unauthorized."""
        ...


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def context_from_token(token: dict[str, Any], auth_token: str | None, request_id: str) -> RequestContext:
    user = token.get("user", {})
    project = token.get("project") or {}
    domain = token.get("domain") or {}
    app_cred = token.get("application_credential") or {}
    return RequestContext(
        request_id=request_id,
        auth_token=auth_token,
        user_id=user.get("id"),
        user_name=user.get("name"),
        user_domain_id=(user.get("domain") or {}).get("id"),
        project_id=project.get("id"),
        project_name=project.get("name"),
        project_domain_id=(project.get("domain") or {}).get("id"),
        domain_id=domain.get("id"),
        domain_name=domain.get("name"),
        system_scope="all" if (token.get("system") or {}).get("all") else None,
        roles=[r["name"] for r in token.get("roles", [])],
        expires_at=token.get("expires_at"),
        application_credential_id=app_cred.get("id"),
        audit_id=(token.get("audit_ids") or [None])[0],
    )


def token_cache_key(token: str) -> str:
    return "token:" + hashlib.sha256(token.encode()).hexdigest()


class CachedTokenValidator:
    """Wraps a validator with the TTL cache; expiry is re-checked on every hit.

    Concurrent misses of one token share one validation: when a busy token's entry expires, the requests that
    arrive meanwhile wait for that one call to identity instead of each making their own (under load, dozens of
    simultaneous validations took seconds each).
    """

    def __init__(self, validator: TokenValidator, cache: Cache, ttl: float) -> None:
        self.validator = validator
        self.cache = cache
        self.ttl = ttl
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def validate(self, token: str) -> dict[str, Any]:
        key = token_cache_key(token)
        started, began = time.time(), time.perf_counter()
        data = await self.cache.get(key)
        if data is None:
            data = await self._validate_once(key, token)
        else:
            component = tracing.current_component.get()
            tracing.record("WORK", component, "validate token (cache hit)", started, time.perf_counter() - began,
                           step=tracing.rest_step(component, "identity", "GET", "/v3/auth/tokens"))
        expires_at = data.get("expires_at")
        if expires_at and parse_time(expires_at) <= datetime.now(UTC):
            await self.cache.delete(key)
            raise Unauthorized("The token has expired.")
        return data

    async def _validate_once(self, key: str, token: str) -> dict[str, Any]:
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = asyncio.ensure_future(self._validate_and_cache(key, token))

            def done(future: asyncio.Future[dict[str, Any]]) -> None:
                if self._pending.get(key) is future:
                    del self._pending[key]
                if not future.cancelled():
                    future.exception()  # retrieved: no "never retrieved" warning when every waiter went away

            pending.add_done_callback(done)
        return await asyncio.shield(pending)  # one waiter cancelled does not cancel the others' validation

    async def _validate_and_cache(self, key: str, token: str) -> dict[str, Any]:
        data = await self.validator.validate(token)
        await self.cache.set(key, data, self.ttl)
        return data
