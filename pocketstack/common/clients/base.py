"""The shared REST client: one pooled aiohttp session per process, request id and token carried on every hop."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from pocketstack.common import tracing
from pocketstack.common.context import get_current
from pocketstack.common.errors import APIError, ServiceUnavailable, error_for_status

# One pooled session per event loop: the services of a process share it; clouds on other threads (tests) have
# their own.
_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = weakref.WeakKeyDictionary()


def http_session() -> aiohttp.ClientSession:
    """The loop's pooled session (keep-alive connections reused across hops)."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(limit=200, limit_per_host=100, keepalive_timeout=60)
        session = aiohttp.ClientSession(connector=connector, json_serialize=lambda o: orjson.dumps(o).decode(),
                                        timeout=aiohttp.ClientTimeout(total=60))
        _sessions[loop] = session
    return session


async def close_http_session() -> None:
    session = _sessions.pop(asyncio.get_running_loop(), None)
    if session is not None and not session.closed:
        await session.close()


def _error_message(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])
        if "message" in body:
            return str(body["message"])
    return fallback


class RemoteError(APIError):
    """A non-2xx answer from another service, keeping its status and message."""


class ServiceClient:
    """Calls one service's REST API; subclasses add typed methods."""

    def __init__(self, base_url: str, service_name: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.service_name = service_name

    def headers(self, token: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "X-Pocketstack-Caller": tracing.current_component.get()}
        ctx = get_current()
        if ctx is not None:
            headers["X-OpenStack-Request-ID"] = ctx.request_id
            token = token or ctx.auth_token
        if token:
            headers["X-Auth-Token"] = token
        if extra:
            headers.update(extra)
        return headers

    async def request(self, method: str, path: str, *, token: str | None = None, json: Any = None,
                      params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
                      ok: tuple[int, ...] = (200, 201, 202, 204)) -> tuple[int, Any, Mapping[str, str]]:
        """Send a request; return (status, parsed JSON or None, headers) or raise the error it maps to."""
        data = orjson.dumps(json) if json is not None else None
        hdrs = self.headers(token, headers)
        span_id = tracing.new_span_id()
        if "X-OpenStack-Request-ID" in hdrs:
            hdrs["traceparent"] = tracing.traceparent(hdrs["X-OpenStack-Request-ID"], span_id)
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        started, began = time.time(), time.perf_counter()
        status = 0
        try:
            async with http_session().request(method, self.base_url + path, data=data, params=params,
                                              headers=hdrs) as resp:
                raw = await resp.read()
                body = orjson.loads(raw) if raw and resp.content_type.endswith("json") else None
                resp_headers = resp.headers.copy()  # case-insensitive, as HTTP header names are
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServiceUnavailable(f"The {self.service_name} service is unreachable: {exc.__class__.__name__}")
        finally:
            if tracing.enabled():
                caller = tracing.current_component.get()
                tracing.record("REST", self.service_name, f"{method} {path}", started, time.perf_counter() - began,
                               step=tracing.rest_step(caller, self.service_name, method, path),
                               outcome=str(status) if status else "unreachable", span_id=span_id)
        if status not in ok:
            err = error_for_status(status, _error_message(body, f"{self.service_name} answered {status}"))
            raise err
        return status, body, resp_headers
