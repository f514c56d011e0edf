"""The ASGI app factory every service uses.

It gives each service the same behaviour at the edge: a global request id (`X-OpenStack-Request-ID`) on every
response and in the context of every request, token validation on every non-public path, error bodies in the
service's own OpenStack style (never a stack trace), 400 for bodies that fail validation, and an access log that
never prints a token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pocketstack.common import metrics, tracing
from pocketstack.common.auth import TokenValidator, context_from_token
from pocketstack.common.context import REQUEST_ID_RE, RequestContext, current_context, new_request_id
from pocketstack.common.errors import (
    APIError,
    BadRequest,
    Conflict,
    ErrorStyle,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    error_for_status,
)
from pocketstack.common.health import HEALTH_PATH, HealthCheck, run_checks
from pocketstack.common.microversion import MicroversionSpec
from pocketstack.common.validation import check_body

log = logging.getLogger("pocketstack.access")
errlog = logging.getLogger("pocketstack.api")


class JSONResponse(Response):
    """orjson-rendered JSON response."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(err: APIError, style: ErrorStyle) -> Response:
    body, content_type = style.body(err)
    headers = {**style.headers(err), **err.headers}
    if isinstance(body, dict):
        return JSONResponse(body, status_code=err.status, headers=headers)
    return Response(body, status_code=err.status, headers=headers, media_type=content_type)


def describe_validation_error(exc: RequestValidationError | ValidationError) -> str:
    """Turn pydantic's error list into one sentence naming each bad field."""
    parts = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body",)]
        field = ".".join(loc)
        if e.get("type") == "json_invalid":
            return "Malformed request body: it is not valid JSON."
        msg = e.get("msg", "is invalid")
        if e.get("type") == "extra_forbidden":
            msg = "Additional properties are not allowed"
        parts.append(f"'{field}': {msg}" if field else msg)
    return "Invalid input: " + "; ".join(parts) if parts else "Invalid input."


# oslo.middleware's sizelimit default (max_request_body_size), which Nova, Glance, Neutron, Cinder and Keystone use
MAX_BODY_SIZE = 114688


class EdgeMiddleware:
    """Request id, authentication and error mapping for one service, as one pure ASGI layer."""

    def __init__(self, app: ASGIApp, *, style: ErrorStyle, validator: TokenValidator | None,
                 is_public: Callable[[str, str], bool], service_name: str, access_log: bool = True,
                 microversion: MicroversionSpec | None = None, health: Sequence[HealthCheck] = (),
                 max_body_size: int = MAX_BODY_SIZE,
                 unlimited_body: Callable[[str, str], bool] = lambda method, path: False) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.unlimited_body = unlimited_body
        self.health = list(health)
        self.microversion = microversion
        self.style = style
        self.validator = validator
        self.is_public = is_public
        self.service_name = service_name
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in (HEALTH_PATH, "/metrics") and scope["method"] in ("GET", "HEAD"):
            await serve_operations(scope, send, self.health)
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-openstack-request-id", "")
        request_id = incoming if REQUEST_ID_RE.match(incoming) else new_request_id()
        status_holder = [500]
        started_response = [False]
        extra_headers = [(b"x-openstack-request-id", request_id.encode()),
                         (b"x-compute-request-id", request_id.encode())]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                started_response[0] = True
                status_holder[0] = message["status"]
                message["headers"] = [*message.get("headers", []), *extra_headers]
            await send(message)

        method, path = scope["method"], scope["path"]
        caller = headers.get("x-pocketstack-caller")
        component_token = tracing.current_component.set(self.service_name)
        # W3C trace context: a service's hop arrives inside the caller's span; a client's request is a span of
        # its own (recorded here), the parent of everything it causes
        parent_span = tracing.parent_of(headers.get("traceparent"))
        client_span = tracing.new_span_id() if caller is None else None
        span_token = tracing.current_span.set(client_span or parent_span)
        wall_start = time.time()
        reset = current_context.set(RequestContext(request_id=request_id))
        try:
            ctx = RequestContext(request_id=request_id)
            token = headers.get("x-auth-token")
            if token and self.validator is not None:
                try:
                    data = await self.validator.validate(token)
                    ctx = context_from_token(data, token, request_id)
                except Unauthorized:
                    if not self.is_public(method, path):
                        raise
            elif not self.is_public(method, path):
                raise Unauthorized()
            scope.setdefault("state", {})["context"] = ctx
            if self.microversion is not None:
                version = self.microversion.negotiate(headers)
                scope["state"]["api_version"] = version
                extra_headers.extend(self.microversion.response_headers(version))
            current_context.set(ctx)
            if not self.unlimited_body(method, path):
                receive = self._limited(headers, receive)
            await self.app(scope, receive, send_wrapper)
        except APIError as err:
            if not started_response[0]:
                await error_response(err, self.style)(scope, receive, send_wrapper)
        except (OperationalError, DBAPIError) as exc:
            errlog.error("%s %s: database unavailable: %s", method, path, exc.__class__.__name__)
            if not started_response[0]:
                await error_response(ServiceUnavailable("The database is unavailable; try again later."),
                                     self.style)(scope, receive, send_wrapper)
        except Exception:
            if not started_response[0]:
                raise
        finally:
            tracing.current_span.reset(span_token)
            if caller is None and tracing.enabled():  # a client's request; service-to-service hops are
                self._record_client_request(scope, request_id, wall_start, time.perf_counter() - started,
                                            str(status_holder[0]), client_span, parent_span)
            current_context.reset(reset)
            tracing.current_component.reset(component_token)
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", metrics.UNMATCHED_ROUTE)
            metrics.HTTP_REQUESTS.labels(self.service_name, method, route, str(status_holder[0])).inc()
            metrics.HTTP_SECONDS.labels(self.service_name, method, route).observe(elapsed)
            if self.access_log:
                log.info("%s %s %s %d %.1fms %s", self.service_name, method, path, status_holder[0],
                         elapsed * 1000, request_id)

    def _limited(self, headers: dict[str, str], receive: Receive) -> Receive:
        """`receive` refusing a body over `max_body_size` (413, as oslo.middleware's sizelimit): by its
        Content-Length at once, else as the chunks arrive."""
        limit = self.max_body_size
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(f"Request is too large: the body may have at most {limit} bytes.")
        received = [0]

        async def counting() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > limit:
                    raise PayloadTooLarge(f"Request is too large: the body may have at most {limit} bytes.")
            return message
        return counting

    def _record_client_request(self, scope: Scope, request_id: str, start: float, duration: float, outcome: str,
                               span_id: str | None, parent_id: str | None) -> None:
        """The span of a client's request (service-to-service hops are recorded by the calling side)."""
        method, path = scope["method"], scope["path"]
        state = scope.get("state", {})
        tracing.record("REST", self.service_name, f"{method} {path}", start, duration,
                       step=tracing.client_step(self.service_name, method, path), outcome=outcome, source="client",
                       request_id=request_id, span_id=span_id, parent_id=parent_id,
                       audit_id=state.get("trace_audit_id") or getattr(state.get("context"), "audit_id", None))


async def serve_operations(scope: Scope, send: Send, health: Sequence[HealthCheck]) -> None:
    """`/healthcheck` and `/metrics`: no token needed, no request id, not counted in the metrics."""
    if scope["path"] == "/metrics":
        body, content_type = metrics.exposition()
        status = 200
    else:
        healthy, reasons = await run_checks(list(health))
        status = 200 if healthy else 503
        accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
        if "application/json" in accept:
            body = orjson.dumps({"detailed": True, "reasons": [
                {k: v for k, v in r.items() if k != "ok"} for r in reasons]})
            content_type = "application/json"
        else:
            down = [f"{r['class']}: {r['reason']}" for r in reasons if not r["ok"]]
            body = ("; ".join(down) if down else "OK").encode()
            content_type = "text/plain; charset=utf-8"
        if scope["method"] == "HEAD":
            status, body = (204 if healthy else 503), b""
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})


class OperationsEndpoints:
    """`/healthcheck` and `/metrics` in front of an app that is not built by `create_app` (the dashboard)."""

    def __init__(self, app: ASGIApp, health: Sequence[HealthCheck] = ()) -> None:
        self.app = app
        self.health = list(health)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in (HEALTH_PATH, "/metrics") and scope["method"] in ("GET",
                                                                                                         "HEAD"):
            await serve_operations(scope, send, self.health)
            return
        await self.app(scope, receive, send)


def create_app(
    *,
    service_name: str,
    style: ErrorStyle,
    routers: Sequence[APIRouter],
    validator: TokenValidator | None,
    is_public: Callable[[str, str], bool] = lambda method, path: False,
    access_log: bool = True,
    state: dict[str, Any] | None = None,
    microversion: MicroversionSpec | None = None,
    health: Sequence[HealthCheck] = (),
    unlimited_body: Callable[[str, str], bool] = lambda method, path: False,
    redirect_slashes: bool = True,
) -> ASGIApp:
    """Build a service's ASGI app: FastAPI routes wrapped in the shared edge middleware. `redirect_slashes`
    False: a path with a trailing slash its table does not list is 404, not a redirect to the one without."""
    app = FastAPI(title=f"pocketstack {service_name}", default_response_class=JSONResponse,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json", redirect_slashes=redirect_slashes)
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    for router in routers:
        app.include_router(router)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> Response:
        return error_response(exc, style)

    @app.exception_handler(RequestValidationError)
    @app.exception_handler(ValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError | ValidationError) -> Response:
        return error_response(BadRequest(describe_validation_error(exc)), style)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else None
        return error_response(error_for_status(exc.status_code, message), style)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # what bad input makes the database refuse is the client's error, not the database being away
        if isinstance(exc, OverflowError) or isinstance(getattr(exc, "orig", None), OverflowError) \
                or isinstance(exc, DataError):
            errlog.warning("%s %s: a value the database cannot hold (%s)", request.method, request.url.path,
                           exc.__class__.__name__)
            return error_response(BadRequest("Invalid input: a value in the request is out of range or of the "
                                             "wrong type."), style)
        if isinstance(exc, IntegrityError):
            errlog.warning("%s %s: refused by a database constraint", request.method, request.url.path)
            return error_response(Conflict("The request conflicts with the data already there."), style)
        if isinstance(exc, OperationalError | DBAPIError):
            errlog.error("database unavailable: %s", exc.__class__.__name__)
            return error_response(ServiceUnavailable("The database is unavailable; try again later."), style)
        errlog.exception("unexpected error in %s %s", request.method, request.url.path)
        return error_response(APIError(), style)

    return EdgeMiddleware(app, style=style, validator=validator, is_public=is_public,
                          service_name=service_name, access_log=access_log, microversion=microversion,
                          health=health, unlimited_body=unlimited_body)


def request_context(request: Request) -> RequestContext:
    """FastAPI dependency: the caller's context as the edge middleware set it."""
    return request.scope["state"]["context"]


async def json_body(request: Request) -> Any:
    """Parse a JSON request body strictly: 400 when malformed or when its names hold control characters
    (`validation.check_body`), 415 handled by the caller if it cares."""
    raw = await request.body()
    if not raw:
        raise BadRequest("The request body is empty; a JSON body is required.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("Malformed request body: it is not valid JSON.")
    check_body(body)
    return body
