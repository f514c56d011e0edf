"""Server-side sessions: a random id in an HttpOnly, SameSite=Strict cookie; the store keeps the user's token
(never the password) and the session's CSRF token. The REST calls a page makes go out with that token."""

from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pocketstack.common.clients.base import ServiceClient
from pocketstack.common.errors import APIError

COOKIE = "pocketstack_session"


@dataclass
class UserSession:
    """One login: the Keystone token, its body (user, project, roles, catalog) and the form's CSRF token."""

    token: str
    body: dict[str, Any]
    identity_url: str
    expires: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @property
    def roles(self) -> set[str]:
        return {r["name"] for r in self.body.get("roles", [])}

    @property
    def can_write(self) -> bool:
        """A member or admin may change things; a reader only looks (the services' default policies)."""
        return bool(self.roles & {"member", "admin"})

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def project(self) -> dict[str, Any]:
        return self.body.get("project") or {}

    @property
    def user(self) -> dict[str, Any]:
        return self.body.get("user") or {}

    def url(self, service_type: str) -> str | None:
        return next((e["url"] for entry in self.body.get("catalog", []) if entry["type"] == service_type
                     for e in entry["endpoints"] if e["interface"] == "public"), None)

    async def call(self, service_type: str, method: str, path: str, *, json: Any = None,
                   params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        """One REST call to a service of the token's catalog, as the user; returns the parsed body."""
        url = self.url(service_type)
        if url is None:
            raise APIError(f"The catalog has no {service_type} service.")
        _, body, _ = await ServiceClient(url, service_type).request(method, path, token=self.token, json=json,
                                                                    params=params, headers=headers)
        return body


class SessionStore:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._sessions: dict[str, UserSession] = {}

    def get(self, sid: str | None) -> UserSession | None:
        found = self._sessions.get(sid or "")
        if found is not None and found.expires < time.time():
            self._sessions.pop(sid or "", None)
            return None
        return found

    def add(self, token: str, body: dict[str, Any], identity_url: str) -> str:
        sid = secrets.token_urlsafe(32)
        expires = time.time() + self.ttl
        with contextlib.suppress(KeyError, ValueError):  # never past the token's own expiry
            expires = min(expires, datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00")).timestamp())
        self._sessions[sid] = UserSession(token, body, identity_url, expires)
        return sid

    def drop(self, sid: str) -> UserSession | None:
        return self._sessions.pop(sid, None)

    async def close(self) -> None:
        self._sessions.clear()
