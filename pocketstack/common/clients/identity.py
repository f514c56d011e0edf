"""Client of the identity service: token validation for the auth middleware (FLOW.md steps 4-5, 21, 24, 27)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from pocketstack.common.auth import parse_time
from pocketstack.common.clients.base import ServiceClient
from pocketstack.common.errors import NotFound, Unauthorized


class IdentityClient(ServiceClient):
    def __init__(self, base_url: str) -> None:
        super().__init__(base_url, "identity")

    async def validate_token(self, token: str) -> dict[str, Any]:
        """Validate a token with Keystone's `GET /v3/auth/tokens` (the token validates itself)."""
        try:
            _, body, _ = await self.request(
                "GET", "/v3/auth/tokens", token=token, params={"nocatalog": "1"},
                headers={"X-Subject-Token": token})
        except (NotFound, Unauthorized):
            raise Unauthorized("The token is invalid, expired or revoked.")
        return body["token"]

    async def issue_token(self, username: str, password: str, project: str,
                          domain: str = "Default") -> tuple[str, dict[str, Any]]:
        """Password authentication scoped to a project by name; returns (token, token body)."""
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": username, "domain": {"name": domain}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"name": domain}}}}}
        _, data, headers = await self.request("POST", "/v3/auth/tokens", json=body, token="")
        # header names arrive as the server spelled them (uvicorn: lower case)
        token = next(v for k, v in headers.items() if k.lower() == "x-subject-token")
        return token, data["token"]


class RemoteTokenValidator:
    """TokenValidator that asks the identity service over REST."""

    def __init__(self, client: IdentityClient) -> None:
        self.client = client

    async def validate(self, token: str) -> dict[str, Any]:
        return await self.client.validate_token(token)


class ServiceTokenProvider:
    """A service user's project-scoped token (user `nova`, project `service`), renewed before it expires.

    `password` may be a function: it is then called on the first issue (a password generated at bootstrap).
    """

    def __init__(self, client: IdentityClient, username: str, password: str | Callable[[], str],
                 project: str = "service",
                 renew_before: float = 300.0) -> None:
        self.client = client
        self.username = username
        self._password = password
        self.project = project
        self.renew_before = renew_before
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.project_id: str | None = None  # of the token's project, once one was issued

    async def token(self) -> str:
        if self._token is None or time.time() > self._expires_at - self.renew_before:
            async with self._lock:
                if self._token is None or time.time() > self._expires_at - self.renew_before:
                    password = self._password() if callable(self._password) else self._password
                    token, body = await self.client.issue_token(self.username, password, self.project)
                    self._expires_at = parse_time(body["expires_at"]).timestamp()
                    self.project_id = (body.get("project") or {}).get("id")
                    self._token = token
        assert self._token is not None
        return self._token

    def __repr__(self) -> str:  # never print the password or token
        return f"ServiceTokenProvider(username={self.username!r}, project={self.project!r})"
