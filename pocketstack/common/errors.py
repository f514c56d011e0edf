"""API errors and how each OpenStack service spells them in a response body.

Raise an `APIError` subclass anywhere below an HTTP handler; the app factory turns it into the body of the
service's own style, an `ErrorStyle` its spec declares: the WSGI fault body, webob's HTML page (both here), or
the service's own (Keystone's, Neutron's).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
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


# The fault names of the WSGI layer Nova and Cinder share (nova/api/openstack/wsgi.py): 404 -> itemNotFound, ...
FAULT_NAMES = {
    400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
    406: "notAcceptable", 409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
    501: "notImplemented", 503: "serviceUnavailable",
}

# webob's exception class names, by status (what Neutron names an error no specific exception describes).
WEBOB_EXCEPTION_NAMES = {
    400: "HTTPBadRequest", 401: "HTTPUnauthorized", 403: "HTTPForbidden", 404: "HTTPNotFound",
    405: "HTTPMethodNotAllowed", 409: "HTTPConflict", 413: "HTTPRequestEntityTooLarge",
    415: "HTTPUnsupportedMediaType", 503: "HTTPServiceUnavailable",
}

Body = tuple[bytes | dict[str, Any], str]  # (body, content type)


@dataclass(frozen=True)
class ErrorStyle:
    """How one service spells an error: its body (each service's spec declares its own) and the headers it adds."""

    body: Callable[[APIError], Body]
    headers: Callable[[APIError], dict[str, str]] = lambda err: {}


def fault_body(err: APIError) -> Body:
    """The WSGI fault body: `{"itemNotFound": {"code": 404, "message": ...}}`."""
    return {FAULT_NAMES.get(err.status, "computeFault"): {"code": err.status, "message": err.message}}, \
        "application/json"


def html_page_body(err: APIError) -> Body:
    """webob's HTML error page (clients take the message from it)."""
    title = f"{err.status} {err.title}"
    page = (f"<html>\n <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n"
            f"  {html.escape(err.message)}<br /><br />\n\n\n\n </body>\n</html>")
    return page.encode(), "text/html; charset=UTF-8"


FAULT_STYLE = ErrorStyle(fault_body)
HTML_PAGE_STYLE = ErrorStyle(html_page_body)
