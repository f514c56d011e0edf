"""API errors and how each OpenStack service spells them in a response body.

Raise an `APIError` subclass anywhere below an HTTP handler; the app factory turns it into the body of the
service's own style: Keystone `{"error": {...}}`, Nova/Cinder `{"itemNotFound": {...}}`, Neutron
`{"NeutronError": {...}}`, Glance's HTML error page.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any


class APIError(Exception):
    status: int = 500
    title: str = "Internal Server Error"
    default_message: str = "An unexpected error prevented the server from fulfilling your request."

    def __init__(self, message: str | None = None, *, error_type: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.message = message or self.default_message
        self.error_type = error_type  # Neutron's specific exception name, e.g. "NetworkNotFound"
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequest(APIError):
    status, title, default_message = 400, "Bad Request", "The request could not be understood."


class Unauthorized(APIError):
    status, title, default_message = 401, "Unauthorized", "The request you have made requires authentication."


class Forbidden(APIError):
    status, title, default_message = 403, "Forbidden", "You are not authorized to perform the requested action."


class NotFound(APIError):
    status, title, default_message = 404, "Not Found", "The resource could not be found."


class MethodNotAllowed(APIError):
    status, title, default_message = 405, "Method Not Allowed", "The method is not allowed for this resource."


class NotAcceptable(APIError):
    status, title, default_message = 406, "Not Acceptable", "The requested version or media type is not supported."


class Conflict(APIError):
    status, title, default_message = 409, "Conflict", "The request conflicts with the current state of the resource."


class PayloadTooLarge(APIError):
    status, title = 413, "Request Entity Too Large"
    default_message = "The request is larger than the server is willing to process."


class UnsupportedMediaType(APIError):
    status, title, default_message = 415, "Unsupported Media Type", "The request media type is not supported."


class RangeNotSatisfiable(APIError):
    status, title, default_message = 416, "Requested Range Not Satisfiable", "The requested range cannot be satisfied."


class ServiceUnavailable(APIError):
    status, title = 503, "Service Unavailable"
    default_message = "The service is temporarily unavailable; try again later."


_BY_STATUS: dict[int, type[APIError]] = {
    cls.status: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, NotAcceptable, Conflict,
                PayloadTooLarge, UnsupportedMediaType, RangeNotSatisfiable, ServiceUnavailable)
}


def error_for_status(status: int, message: str | None = None) -> APIError:
    cls = _BY_STATUS.get(status)
    if cls is None:
        err = APIError(message)
        err.status = status
        return err
    return cls(message)


# Nova's fault names (nova/api/openstack/wsgi.py); Cinder uses the same.
_NOVA_FAULT_NAMES = {
    400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
    406: "notAcceptable", 409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
    501: "notImplemented", 503: "serviceUnavailable",
}

# Neutron's exception name when no specific one is given.
_NEUTRON_DEFAULT_TYPES = {
    400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "HTTPForbidden", 404: "HTTPNotFound",
    405: "HTTPMethodNotAllowed", 409: "HTTPConflict", 413: "HTTPRequestEntityTooLarge",
    415: "HTTPUnsupportedMediaType", 503: "HTTPServiceUnavailable",
}

Body = tuple[bytes | dict[str, Any], str]  # (body, content type)


def _keystone(err: APIError) -> Body:
    return {"error": {"code": err.status, "title": err.title, "message": err.message}}, "application/json"


def _nova(err: APIError) -> Body:
    return ({_NOVA_FAULT_NAMES.get(err.status, "computeFault"): {"code": err.status, "message": err.message}},
            "application/json")


def _neutron(err: APIError) -> Body:
    error_type = err.error_type or _NEUTRON_DEFAULT_TYPES.get(err.status, "HTTPInternalServerError")
    return {"NeutronError": {"type": error_type, "message": err.message, "detail": ""}}, "application/json"


def _glance(err: APIError) -> Body:
    # Glance answers with webob's HTML error page; openstacksdk and glanceclient take the message from it.
    title = f"{err.status} {err.title}"
    page = (f"<html>\n <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n"
            f"  {html.escape(err.message)}<br /><br />\n\n\n\n </body>\n</html>")
    return page.encode(), "text/html; charset=UTF-8"


ERROR_STYLES: dict[str, Callable[[APIError], Body]] = {
    "keystone": _keystone,
    "nova": _nova,
    "cinder": _nova,
    "neutron": _neutron,
    "glance": _glance,
    "metadata": _glance,  # Nova's metadata API answers errors as webob pages too
}
