"""RPC errors, and which exception classes may cross the bus with their type intact.

A server turns an exception raised by a handler into a failure reply. When its class (or the nearest base class
in its MRO) is registered, the caller re-raises an instance of that class with the same args and attributes;
otherwise the caller raises `RemoteError` carrying the remote type name, message and traceback text.
"""

from __future__ import annotations

import traceback
from typing import Any, TypeVar

from pocketstack.common import errors as api_errors

E = TypeVar("E", bound=type[BaseException])

_REGISTRY: dict[str, type[BaseException]] = {}


class RPCError(Exception):
    """Base of the bus's own errors."""


class MessagingTimeout(RPCError):
    """No reply came within the call's timeout (nobody listens, or the server is too slow)."""


class TransportError(RPCError):
    """The transport could not carry the message (broker unreachable, connection lost during a call)."""


class SerializationError(RPCError):
    """A value in the message cannot cross the bus."""


class UnsupportedVersion(RPCError):
    """The server has no endpoint for the namespace that handles the requested version."""


class RPCVersionCapError(RPCError):
    """The client was asked to send a version above its cap (rolling upgrades pin the cap)."""


class NoSuchMethod(RPCError):
    """The endpoint that handles the namespace and version has no such method."""


class InvalidArguments(RPCError):
    """The method exists but the arguments sent do not fit its signature."""


class RemoteError(RPCError):
    """A remote exception whose class is not allowed to cross the bus."""

    def __init__(self, exc_type: str, value: str, remote_traceback: str = "") -> None:
        self.exc_type = exc_type
        self.value = value
        self.remote_traceback = remote_traceback
        super().__init__(f"Remote error: {exc_type} {value}")


def exception_name(cls: type[BaseException]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_remote_exception(*classes: E) -> E:
    """Allow exception classes to cross the bus typed; usable as a class decorator."""
    for cls in classes:
        _REGISTRY[exception_name(cls)] = cls
    return classes[0]


def is_registered(cls: type[BaseException]) -> bool:
    """Whether the class, or one of its bases, crosses the bus typed (an expected error, not a crash)."""
    return any(_REGISTRY.get(exception_name(c)) is c for c in cls.__mro__)


def _sendable_attrs(exc: BaseException) -> dict[str, Any]:
    from pocketstack.common.rpc.serializer import find_unsendable

    return {k: v for k, v in vars(exc).items()
            if not k.startswith("_") and find_unsendable(v) is None}


def encode_failure(exc: BaseException) -> dict[str, Any]:
    """The failure part of a reply: the nearest registered type, the real type, message, args, attributes."""
    from pocketstack.common.rpc.serializer import find_unsendable

    registered = next((c for c in type(exc).__mro__ if _REGISTRY.get(exception_name(c)) is c), None)
    args = list(exc.args) if find_unsendable(list(exc.args)) is None else [str(exc)]
    return {
        "type": exception_name(registered) if registered else None,
        "remote_type": exception_name(type(exc)),
        "message": str(exc),
        "args": args,
        "attrs": _sendable_attrs(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


def decode_failure(failure: dict[str, Any]) -> BaseException:
    """Rebuild the exception a failure reply describes (pickle-style: no __init__ call, args + attributes)."""
    cls = _REGISTRY.get(failure.get("type") or "")
    if cls is None:
        remote_type = str(failure.get("remote_type", "unknown"))
        return RemoteError(remote_type.removeprefix("builtins."), str(failure.get("message", "")),
                           str(failure.get("traceback", "")))
    args = tuple(failure.get("args") or ())
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(failure.get("attrs") or {})
    exc.remote_traceback = failure.get("traceback", "")  # type: ignore[attr-defined]
    return exc


register_remote_exception(RemoteError, MessagingTimeout, TransportError, SerializationError, UnsupportedVersion,
                          RPCVersionCapError, NoSuchMethod, InvalidArguments)
register_remote_exception(*(obj for obj in vars(api_errors).values()
                            if isinstance(obj, type) and issubclass(obj, api_errors.APIError)))
